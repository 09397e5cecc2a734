"""``quantsam.contrib.qlib.SAMGRU`` against the installed pyqlib (skipped without it: ``pip install -e '.[qlib]'``).

* With ``optimizer=adamw, weight_decay=0`` the adapter's trajectory equals qlib's own ``GRU`` (torch Adam, qlib's
  ``train_epoch``) on the same shuffled batches — the outside reference for the closure loop.
* With ``optimizer=gsam`` it equals quantsam's ``GSAM`` driven by hand over the same batches.
* ``qrun examples/qlib/workflow_alpha360_samgru.yaml`` runs end to end (Alpha360 handler, SignalRecord,
  SigAnaRecord) on a small qlib-format market the test writes itself.
"""
# ruff: noqa: NPY002  (qlib's loop shuffles with the global numpy stream: the tests seed that stream)

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

qlib = pytest.importorskip("qlib")
from qlib.contrib.model.pytorch_gru import GRU, GRUModel  # noqa: E402

from quantsam.contrib.qlib import SAMGRU  # noqa: E402
from quantsam.contrib.qlib_market import write_toy_qlib_market  # noqa: E402
from quantsam.optim import GSAM  # noqa: E402

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "qlib" / "workflow_alpha360_samgru.yaml"


def _frames(n=96, d_feat=3, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, d_feat * steps)).astype(np.float32))
    y = pd.DataFrame({"label": (x.iloc[:, 0] * 0.5 + rng.normal(size=n) * 0.1).astype(np.float32)})
    return x, y


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


SMALL = dict(d_feat=3, hidden_size=8, num_layers=1, batch_size=16, seed=0, lr=1e-2)


def test_adamw_adapter_equals_qlibs_own_gru_with_adam():
    x, y = _frames()
    ours = SAMGRU(optimizer="adamw", weight_decay=0.0, **SMALL)
    theirs = GRU(optimizer="adam", **SMALL)
    theirs.gru_model.load_state_dict(ours.gru_model.state_dict())
    for epoch in range(2):
        np.random.seed(10 + epoch)
        ours.train_epoch(x, y)
        np.random.seed(10 + epoch)
        theirs.train_epoch(x, y)
    for a, b in zip(_params(ours.gru_model), _params(theirs.gru_model), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert ours.grad_evals == 2 * (96 // 16)


def test_gsam_adapter_equals_quantsams_gsam_on_the_same_batches():
    x, y = _frames(n=100)  # 100 rows, batches of 16: the last 4 rows are dropped, as qlib's loop does
    kw = dict(rho=0.05, alpha=0.2)
    ours = SAMGRU(optimizer="gsam", optimizer_kwargs=kw, weight_decay=1e-2, **SMALL)
    ref = GRUModel(d_feat=3, hidden_size=8, num_layers=1)
    ref.load_state_dict(ours.gru_model.state_dict())
    opt = GSAM(ref.parameters(), lr=1e-2, weight_decay=1e-2, **kw)
    np.random.seed(3)
    ours.train_epoch(x, y)
    np.random.seed(3)
    order = np.arange(100)
    np.random.shuffle(order)
    xv, yv = x.values, y.values[:, 0]
    for s in range(0, 100 - 16 + 1, 16):
        f = torch.from_numpy(xv[order[s:s + 16]])
        t = torch.from_numpy(yv[order[s:s + 16]])

        def closure(f=f, t=t):
            opt.zero_grad()
            loss = torch.mean((ref(f) - t) ** 2)
            loss.backward()
            torch.nn.utils.clip_grad_value_(ref.parameters(), 3.0)
            return loss

        opt.step(closure)
    for a, b in zip(_params(ours.gru_model), _params(ref), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert ours.grad_evals == opt.grad_evals == 2 * 6


def test_unknown_optimizer_names_the_registry():
    with pytest.raises(ValueError, match="gsam"):
        SAMGRU(optimizer="nope", **SMALL)


@pytest.mark.slow
def test_qrun_runs_the_example_workflow_end_to_end(tmp_path):
    import yaml

    qrun = Path(sys.executable).parent / "qrun"
    if not qrun.exists():
        qrun = shutil.which("qrun")
    assert qrun, "qrun (pyqlib's CLI) is not installed beside this interpreter"
    days = write_toy_qlib_market(tmp_path / "qlib_data")
    cfg = yaml.safe_load(EXAMPLE.read_text().replace("{{ QLIB_DATA | default('~/.qlib/qlib_data/cn_data', true) }}",
                                                     str(tmp_path / "qlib_data")))
    d = lambda i: f"{days[i]:%Y-%m-%d}"  # noqa: E731
    h = cfg["task"]["dataset"]["kwargs"]["handler"]["kwargs"]
    h.update(instruments="all", start_time=d(0), end_time=d(-1), fit_start_time=d(0), fit_end_time=d(199))
    cfg["task"]["dataset"]["kwargs"]["segments"] = {"train": [d(61), d(199)], "valid": [d(200), d(259)],
                                                    "test": [d(260), d(-3)]}
    cfg["task"]["model"]["kwargs"].update(n_epochs=2, early_stop=2, batch_size=256, hidden_size=16)
    cfg["task"]["record"] = [r for r in cfg["task"]["record"] if r["class"] != "PortAnaRecord"]
    wf = tmp_path / "workflow.yaml"
    wf.write_text(yaml.safe_dump(cfg))
    out = subprocess.run([str(qrun), str(wf)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    runs = [p.parent for p in tmp_path.rglob("pred.pkl")]
    assert runs, "no SignalRecord output (pred.pkl) under the working directory"
    art = runs[0]
    assert (art / "sig_analysis" / "ic.pkl").exists() and (art / "sig_analysis" / "ric.pkl").exists()
    pred = pd.read_pickle(art / "pred.pkl")  # written by qlib's SignalRecord in this test
    assert len(pred) > 0 and np.isfinite(pred.to_numpy()).all()
    assert "quantsam optimizer gsam" in out.stdout + out.stderr


@pytest.mark.slow
def test_the_readme_bench_smoke_command_runs(tmp_path):
    """`python scripts/bench/qlib_gru.py --toy /tmp/qlib_toy --epochs 2` as the README gives it (into a temp dir)."""
    out = subprocess.run([sys.executable, "scripts/bench/qlib_gru.py", "--toy", str(tmp_path / "qlib_toy"),
                          "--epochs", "2"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert "gsam - adamw: test RankIC" in out.stdout
