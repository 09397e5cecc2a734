"""The GPU path, checked where it can run everywhere (CPU; the CUDA cases run when a GPU is present): device-resident
windows equal the host path's, training through them gives the same model, bf16 autocast stays within a stated
tolerance of fp32, and the determinism switch does what it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quantsam.features.dataset import FeatureSet, rolling_splits
from quantsam.features.device_windows import DeviceFeatures, normalize_window_torch
from quantsam.features.kline import normalize_window
from quantsam.train.loop import FitConfig, evaluate, fit_unit
from quantsam.train.runtime import configure_determinism

MODEL = {"name": "gru", "input_size": 6, "hidden_size": 16, "num_layers": 2, "dropout": 0.0}


@pytest.fixture(scope="module")
def fs(small_panel):
    return FeatureSet(small_panel, daily_window=20, weekly_window=10, label_horizon=5)


def devices():
    return ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def test_normalisation_in_torch_equals_numpy():
    rng = np.random.default_rng(0)
    win = rng.lognormal(size=(300, 30, 6)).astype(np.float32)
    win[rng.random(win.shape) < 0.05] = np.nan
    win[:7, -1, 2] = np.nan  # a missing last value
    win[3] = np.nan  # a name without data
    got = normalize_window_torch(torch.from_numpy(win)).numpy()
    want = normalize_window(win)
    assert np.isfinite(got).all() and np.abs(got - want).max() < 1e-5  # float32 sums in another order
    got_r = normalize_window_torch(torch.from_numpy(win), "robust").numpy()
    assert np.isfinite(got_r).all() and np.abs(got_r - normalize_window(win, "robust")).max() < 1e-4


@pytest.mark.parametrize("device", devices())
def test_device_windows_equal_the_host_windows(fs, device):
    dev = DeviceFeatures(fs, torch.device(device))
    for freq in ("daily", "weekly"):
        first = fs.windows[freq].first_valid()
        for t in (first + 70, first + 71, first + 157, len(fs.panel.dates) - 1):
            x, names = fs.inputs(freq, t)
            xd, names_d = dev.inputs(freq, t)
            assert np.array_equal(names, names_d)
            assert xd.device.type == device and xd.dtype == torch.float32
            # numpy sums float32 along axis 0 sequentially (error ~ n x 6e-8 relative), torch more accurately: the
            # z-scores (|z| up to ~10) differ by <= 5e-5 here
            assert np.abs(xd.cpu().numpy() - x).max() < 1e-4, (freq, t)


def _fit(fs, dev=None, precision="fp32", epochs=3):
    split = rolling_splits(fs.panel.dates, fs.first_usable, 252, 126, 63, 5, 5, "2020-06-01", max_windows=1)[0]
    fc = FitConfig(model=MODEL, optimizer={"name": "adamw", "lr": 5e-3}, max_epochs=epochs, patience=epochs,
                   max_names_per_batch=128, precision=precision)
    device = torch.device("cpu")
    res = fit_unit(fs, split, "daily", 0, fc, device, dev=dev)
    return res, evaluate(res.model, fs, "daily", split.valid, device, dev, precision)


def test_training_through_device_windows_gives_the_same_model(fs):
    host, m_host = _fit(fs)
    ondev, m_dev = _fit(fs, dev=DeviceFeatures(fs, torch.device("cpu")))
    # same rows, same steps; inputs differ only by float32 summation order (< 1e-4), which Adam's normalisation
    # amplifies on near-zero gradients: the models agree in what they predict, not bit for bit
    # (measured: validation RankIC 0.047387 vs 0.047388)
    assert abs(m_host["rank_ic"] - m_dev["rank_ic"]) < 1e-4 and abs(m_host["ic"] - m_dev["ic"]) < 1e-4


def test_bf16_autocast_stays_within_tolerance_of_fp32(fs):
    """bf16 keeps 8 bits of mantissa: the stated tolerance is 0.005 of validation RankIC (and IC) after 3 epochs."""
    _, m32 = _fit(fs)
    _, m16 = _fit(fs, precision="bf16")
    # measured: validation RankIC 0.04739 (fp32) vs 0.04748 (bf16); IC 0.03265 vs 0.03263
    assert abs(m32["rank_ic"] - m16["rank_ic"]) < 0.005 and abs(m32["ic"] - m16["ic"]) < 0.005
    assert m16["rank_ic"] > 0.5 * m32["rank_ic"] > 0  # it still learns


def test_determinism_switch():
    configure_determinism(torch.device("cpu"), deterministic=False)  # CPU runs are always deterministic
    assert torch.are_deterministic_algorithms_enabled()
    if torch.cuda.is_available():
        configure_determinism(torch.device("cuda"), deterministic=False)
        assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
        configure_determinism(torch.device("cuda"), deterministic=True)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.are_deterministic_algorithms_enabled()
