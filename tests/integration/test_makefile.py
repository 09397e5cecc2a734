"""The Makefile turns known group variables into Hydra overrides."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def make_n(*args: str) -> str:
    out = subprocess.run(["make", "-n", "-o", ".venv/.installed", *args], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return out.stdout


def test_train_overrides():
    lines = [ln for ln in make_n("train", "optimizer=gsam", "seed=3").splitlines() if "-m quantsam" in ln]
    assert lines == [".venv/bin/python -m quantsam train optimizer=gsam seed=3"]


def test_args_escape_hatch_and_groups():
    out = make_n("sweep", "launcher=joblib", "ARGS=trainer.max_epochs=2 +rerun=true")
    assert "-m quantsam train --multirun experiment=optimizer_sweep launcher=joblib trainer.max_epochs=2 +rerun=true" in out


def test_help_lists_targets():
    out = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for t in ("install", "demo", "data", "train", "sweep", "pipeline", "test", "bench", "lint", "mlflow-ui"):
        assert t in out
