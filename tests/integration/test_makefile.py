"""The Makefile keeps its promises: every target the README documents exists once and runs exactly the documented
command (checked with ``make -n``), make prints no warning, config groups become Hydra overrides only when given on
the command line, and ``make help`` lists each target once."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PY = ".venv/bin/python -m quantsam"

# (make arguments, the exact command it runs)
CASES = [
    (["demo"], f"{PY} pipeline --multirun experiment=demo optimizer=adamw,gsam"),
    (["demo", "optimizer=asam", "seed=2"], f"{PY} pipeline --multirun experiment=demo optimizer=adamw,asam seed=2"),
    (["data"], f"{PY} data"),
    (["data", "data=real_tidy"], f"{PY} data data=real_tidy"),
    (["train", "optimizer=gsam", "seed=3"], f"{PY} train optimizer=gsam seed=3"),
    (["train", "optimizer=sam", "seed=3", "ARGS=trainer.max_epochs=20 trainer.n_seeds=1"],
     f"{PY} train optimizer=sam seed=3 trainer.max_epochs=20 trainer.n_seeds=1"),
    (["sweep"], f"{PY} train --multirun experiment=optimizer_sweep"),
    (["sweep", "launcher=basic", "ARGS=trainer.max_epochs=2 +rerun=true"],
     f"{PY} train --multirun experiment=optimizer_sweep launcher=basic trainer.max_epochs=2 +rerun=true"),
    (["pipeline", "optimizer=gsam", "experiment=demo"], f"{PY} pipeline optimizer=gsam experiment=demo"),
    (["study"], f"{PY} pipeline --multirun experiment=study"),
    (["study", "ARGS=seed=0,1,2"], f"{PY} pipeline --multirun experiment=study seed=0,1,2"),
    (["study", "experiment=real_csi500_cpu"], f"{PY} pipeline --multirun experiment=real_csi500_cpu"),
    (["study", "experiment=study_extended"], f"{PY} pipeline --multirun experiment=study_extended"),
    (["real-study"], ["mkdir -p logs", "set -o pipefail; nice -n 19 .venv/bin/python scripts/real_study.py 2>&1 | tee -a "
                                       "logs/real_study.log"]),
    (["real-study", "ARGS=--arms adamw"], ["mkdir -p logs", "set -o pipefail; nice -n 19 .venv/bin/python "
                                           "scripts/real_study.py --arms adamw 2>&1 | tee -a logs/real_study.log"]),
    (["real-study", "ARGS=--commit"], ["mkdir -p logs", "set -o pipefail; nice -n 19 .venv/bin/python "
                                       "scripts/real_study.py --commit 2>&1 | tee -a logs/real_study.log"]),
    (["tune", "optimizer=gsam"], f"{PY} tune optimizer=gsam"),
    (["tune", "optimizer=esam", "ARGS=hydra.sweeper.n_trials=30"], f"{PY} tune optimizer=esam hydra.sweeper.n_trials=30"),
    (["factor-test", "RUN=outputs/train/x"], f"{PY} factor_test factor_test.input=outputs/train/x"),
    (["backtest", "universe=csi1000"], f"{PY} backtest universe=csi1000"),
    (["backtest", "RUN=s.parquet", "portfolio=ai84_lp"], f"{PY} backtest backtest.input=s.parquet portfolio=ai84_lp"),
    (["report", "SWEEP=multirun/a/b"], f"{PY} report report.sweep_dir=multirun/a/b"),
    (["test"], ".venv/bin/python -m pytest -q"),
    (["test-unit"], ".venv/bin/python -m pytest -q tests/unit"),
    (["test-slow"], '.venv/bin/python -m pytest -q -m "slow or not slow"'),
    (["lint"], ".venv/bin/ruff check src tests scripts notebooks"),
    (["mlflow-ui"], [f"{PY.replace(' -m quantsam', '')} -m quantsam.tracking.ui sqlite:///{ROOT}/mlruns.db 5000",
                     f"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false .venv/bin/mlflow ui --backend-store-uri "
                     f"sqlite:///{ROOT}/mlruns.db --default-artifact-root {ROOT}/mlartifacts --host 127.0.0.1 "
                     "--port 5000 --workers 1"]),
    (["mlflow-server"], f".venv/bin/mlflow server --backend-store-uri sqlite:///{ROOT}/mlruns.db --artifacts-destination "
                        f"{ROOT}/mlartifacts --serve-artifacts --host 127.0.0.1 --port 5000 --workers 1"),
    (["mlflow-server", "HOST=0.0.0.0", "PORT=5001"],
     f".venv/bin/mlflow server --backend-store-uri sqlite:///{ROOT}/mlruns.db --artifacts-destination "
     f"{ROOT}/mlartifacts --serve-artifacts --host 0.0.0.0 --port 5001 --workers 1"),
    (["clean"], "rm -rf outputs multirun .pytest_cache .ruff_cache"),
]


def _make_env(env: dict | None = None) -> dict:
    """The environment of a top-level make: when the tests themselves run under ``make test`` (CI), the inherited
    MAKELEVEL/MAKEFLAGS would make the child print "Entering directory" lines."""
    env = dict(os.environ if env is None else env)
    for k in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"):
        env.pop(k, None)
    return env


def make_n(*args: str, env: dict | None = None) -> tuple[list[str], str]:
    out = subprocess.run(["make", "--no-print-directory", "-n", "-o", ".venv/.installed", *args], cwd=ROOT,
                         capture_output=True, text=True, check=True, env=_make_env(env))
    lines = [ln for ln in out.stdout.splitlines() if ln.strip() and not ln.startswith(("echo", "for "))]
    return lines, out.stderr


@pytest.mark.parametrize("args,command", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_each_target_runs_the_documented_command(args, command):
    lines, err = make_n(*args)
    assert "warning" not in err.lower(), err
    assert lines == (command if isinstance(command, list) else [command])


def test_bench_runs_every_benchmark():
    out = subprocess.run(["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "bench"], cwd=ROOT,
                         env=_make_env(), capture_output=True, text=True,
                         check=True)
    assert "scripts/bench/*.py" in out.stdout and "warning" not in out.stderr.lower()


def test_every_target_the_readme_documents_is_checked():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`make ([a-z][a-z-]*)", readme)) | set(re.findall(r"^make ([a-z][a-z-]*)", readme,
                                                                                     re.M))
    checked = {a[0] for a, _ in CASES} | {"bench", "help", "install"}
    assert documented, "the README documents no make target?"
    assert documented <= checked, f"README documents {sorted(documented - checked)} without a test here"


def test_no_warnings_and_each_target_once():
    text = (ROOT / "Makefile").read_text()
    targets = re.findall(r"^([a-z][a-z-]*):", text, re.M)
    dup = {t for t in targets if targets.count(t) > 1}
    assert not dup, f"defined twice: {dup}"
    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, env=_make_env(), capture_output=True,
                         text=True, check=True)
    assert "warning" not in out.stderr.lower()
    listed = re.findall(r"^\s+(?:\x1b\[\d+m)?([a-z][a-z-]*)", out.stdout, re.M)
    assert sorted(listed) == sorted(set(listed)) and {"demo", "study", "factor-test", "backtest", "report",
                                                     "mlflow-ui", "test", "test-slow"} <= set(listed)
    assert "index-enhanced" not in next(ln for ln in out.stdout.splitlines() if re.search(r"\btest\b ", ln))


def test_only_command_line_variables_become_overrides():
    env = {**os.environ, "data": "oops", "model": "nope", "seed": "9"}
    lines, _ = make_n("train", "optimizer=gsam", env=env)
    assert lines == [f"{PY} train optimizer=gsam"]


def test_every_config_group_can_be_given():
    """Every folder of conf/ is a group the Makefile passes on (read from conf/, not listed twice), and seed."""
    groups = sorted(p.name for p in (ROOT / "conf").iterdir() if p.is_dir() and p.name not in ("tune_space", "experiment"))
    groups += ["experiment", "seed"]
    assert {"data", "universe", "optimizer", "trainer", "portfolio", "backtest", "launcher", "experiment"} < set(groups)
    lines, _ = make_n("pipeline", *[f"{g}=x{i}" for i, g in enumerate(groups)])
    assert lines == [f"{PY} pipeline " + " ".join(f"{g}=x{i}" for i, g in enumerate(groups))]
