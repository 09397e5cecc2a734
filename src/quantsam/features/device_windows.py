"""The GPU path's inputs: the adjusted bars resident on the device, windows gathered there with torch indexing.

The host path (:class:`quantsam.features.dataset.FeatureSet`) gathers and normalises each date's windows in numpy and
copies the batch to the device: at full cross-section (5,000 names x 30 steps x 6 fields = 3.6 MB per date) that copy
and the numpy work dominate a GPU step. Here, once per process, the adjusted daily bars ``[T, N, 6]``, the completed
weekly bars ``[W, N, 6]`` and every day's week-to-date bar ``[T, N, 6]`` (the same numpy functions as the host path)
go to the device with the labels; a batch is then a slice + ``index_select`` + :func:`normalize_window_torch` on the
device. Only the batch's row indices cross per step. Memory: ~2 x T x N x 24 bytes + the labels (0.75 GB for 2,658
days x 5,000 names). Numbers equal the host path to float32 summation order (test: ``tests/unit/test_device_path.py``).
"""

from __future__ import annotations

import numpy as np
import torch

from quantsam.features.dataset import FeatureSet
from quantsam.features.kline import MAD_SCALE, ROBUST_CLIP, adjust
from quantsam.features.windows import WeeklyWindows


def normalize_window_torch(win: torch.Tensor, method: str = "zscore") -> torch.Tensor:
    """:func:`quantsam.features.kline.normalize_window` in torch (same operations, on any device). The robust
    median is ``nanquantile(0.5)`` (linear interpolation, as numpy's median; ``nanmedian`` takes the lower one)."""
    x = win / win[:, -1:, :]
    ok = torch.isfinite(x)
    zero = torch.zeros((), dtype=torch.float32, device=x.device)
    if method == "robust":
        xf = torch.where(ok, x, torch.full((), float("nan"), dtype=x.dtype, device=x.device)).float()
        flat = xf.reshape(xf.shape[0], -1)
        med = torch.nanquantile(flat, 0.5, dim=0, keepdim=True)
        mad = torch.nanquantile((flat - med).abs(), 0.5, dim=0, keepdim=True) * MAD_SCALE
        z = ((flat - med) / mad).reshape(xf.shape)
        return torch.where(torch.isfinite(z), z.clamp(-ROBUST_CLIP, ROBUST_CLIP), zero)
    x = torch.where(ok, x, torch.zeros((), dtype=x.dtype, device=x.device)).float()
    n = ok.sum(dim=0, keepdim=True).float()
    mu = x.sum(dim=0, keepdim=True) / n
    d = torch.where(ok, x - mu, zero)
    sd = torch.sqrt((d * d).sum(dim=0, keepdim=True) / n)
    z = torch.where(ok, d / sd, zero)
    return torch.where(torch.isfinite(z), z, zero)


class DeviceFeatures:
    """``inputs(freq, t) -> (x [n, L, 6] on the device, names)`` like ``FeatureSet.inputs``, gathered on the device."""

    def __init__(self, fs: FeatureSet, device: torch.device, chunk: int = 256):
        self.fs, self.device = fs, torch.device(device)
        panel = fs.panel
        T = len(panel.dates)
        self.daily: torch.Tensor | None = None
        self.wtd: torch.Tensor | None = None
        self.bars: torch.Tensor | None = None
        any_w = next(iter(fs.windows.values()))
        idx, adj = any_w._idx, any_w._adj
        if "daily" in fs.windows:
            self.daily = torch.empty((T, len(panel.codes), 6), dtype=torch.float32, device=self.device)
            for a in range(0, T, chunk):  # adjusted in chunks of days: bounded host memory
                v = panel.values[a:a + chunk]
                self.daily[a:a + chunk] = torch.from_numpy(adjust(v[..., idx], v[..., adj])).to(self.device)
        wk = fs.windows.get("weekly")
        if isinstance(wk, WeeklyWindows):
            self.weekly = wk
            self.bars = torch.from_numpy(np.ascontiguousarray(wk.weekly.bars)).to(self.device)
            self.wtd = torch.empty((T, len(panel.codes), 6), dtype=torch.float32, device=self.device)
            every = np.arange(len(panel.codes))
            for t in range(T):  # the host path's own week-to-date aggregation, once per day
                self.wtd[t] = torch.from_numpy(wk.week_to_date(t, every)).to(self.device)
        self.label = torch.from_numpy(np.ascontiguousarray(fs.label)).to(self.device)  # [T, N], as the host's
        self._names: dict[int, tuple[np.ndarray, torch.Tensor]] = {}

    def names(self, t: int) -> tuple[np.ndarray, torch.Tensor]:
        hit = self._names.get(t)
        if hit is None:
            n = self.fs.names(t)
            hit = self._names[t] = (n, torch.from_numpy(n).to(self.device))
        return hit

    def inputs(self, freq: str, t: int) -> tuple[torch.Tensor, np.ndarray]:
        names, idx = self.names(t)
        w = self.fs.windows[freq]
        w._check(t)
        L = w.length
        if freq == "daily":
            win = self.daily[t - L + 1: t + 1].index_select(1, idx)  # [L, n, 6]
        else:
            wk = int(self.weekly.weekly.week_of_day[t])
            done = self.bars[wk - L + 1: wk].index_select(1, idx)
            win = torch.cat([done, self.wtd[t].index_select(0, idx)[None]], dim=0)
        return normalize_window_torch(win.permute(1, 0, 2), self.fs.normalize), names

    def batch(self, freq: str, t: int, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) of ``rows`` (positions among date ``t``'s eligible names) — only ``rows`` crosses."""
        x, _ = self.inputs(freq, t)
        r = torch.from_numpy(np.asarray(rows)).to(self.device)
        return x.index_select(0, r), self.label[t].index_select(0, self.names(t)[1].index_select(0, r))
