"""One fit = one job: a study split into per-(window, model) jobs, run out of order as a cluster would, then
assembled by the full config, gives predictions and a signal identical bit for bit to the monolithic run (CPU)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.cli import isolated, quantsam

ROOT = Path(__file__).parents[2]


def _train(tmp: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    proc = quantsam("train", "experiment=smoke", "trainer.max_windows=2", "trainer.num_threads=1",
                    "trainer.progress=false", *isolated(tmp / name, data=tmp / "data"), *extra, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _outputs(tmp: Path, name: str) -> tuple[pd.DataFrame, dict]:
    (work,) = (tmp / name / "out" / "train").glob("adamw-*")
    metrics = json.loads((work / "metrics.json").read_text())
    return pd.read_parquet(work / "predictions.parquet"), metrics


def test_split_jobs_then_assemble_equal_the_monolithic_run(tmp_path):
    _train(tmp_path, "mono")
    # the units as separate jobs, out of order; none of them assembles
    for extra in (["trainer.windows=[1]", "trainer.models=[weekly]"], ["trainer.windows=[0]"],
                  ["trainer.windows=[1]", "trainer.models=[daily]"]):
        _train(tmp_path, "split", *extra)
        (work,) = (tmp_path / "split" / "out" / "train").glob("adamw-*")
        assert not (work / "predictions.parquet").exists()
    assert len(list(work.glob("units/*.json"))) == 4
    _train(tmp_path, "split")  # the full config: every unit done -> assemble only
    p_mono, m_mono = _outputs(tmp_path, "mono")
    p_split, m_split = _outputs(tmp_path, "split")
    assert len(p_mono) and p_mono["window"].nunique() == 2
    pd.testing.assert_frame_equal(p_split, p_mono, check_exact=True)
    for k, v in m_mono.items():  # the test metrics too (wall-clock timings aside)
        if isinstance(v, float) and not k.endswith("_s") and not any(w in k for w in ("wall", "second", "time")):
            assert m_split[k] == v, k


@pytest.mark.parametrize("bad", [["trainer.windows=[2]"]])
def test_a_window_that_does_not_exist_is_a_clear_error(tmp_path, bad):
    proc = quantsam("train", "experiment=smoke", "trainer.max_windows=2", *bad, *isolated(tmp_path, mlflow="off"),
                    timeout=300)
    assert proc.returncode != 0 and "trainer.windows" in proc.stderr and "0..1" in proc.stderr


def test_plan_counts_fits_and_grad_evals_before_spending(tmp_path):
    """``python -m quantsam plan`` reads the sweep (never runs it): fits = windows x models x seeds per job x seed
    jobs; grad evals = steps x the evaluations per step the optimizer really makes (AdamW 1, GAM 4)."""
    proc = quantsam("plan", "experiment=smoke", "trainer.max_windows=2", "optimizer=adamw,gam", "seed=0,1",
                    *isolated(tmp_path, mlflow=None), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {ln.split()[0]: ln.split()[1:] for ln in proc.stdout.splitlines() if ln.split()[:1] in (["adamw"], ["gam"])}
    fits, steps, evals = (int(rows["adamw"][i].replace(",", "")) for i in range(3))
    assert fits == 2 * 2 * 1 * 2  # 2 windows x 2 models x 1 seed per job x 2 seed jobs
    assert evals == steps and int(rows["gam"][2].replace(",", "")) == 4 * steps
    assert "estimated training wall time" in proc.stdout and "us/name-step" in proc.stdout  # the calibration used
    assert not (tmp_path / "out" / "train").exists()  # nothing trained
