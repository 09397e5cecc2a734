"""The tests' one way to run quantsam as a user does, and to keep a run inside its temporary folder.

``quantsam("train", "experiment=smoke", *isolated(tmp))`` runs ``python -m quantsam train ...`` (what the Makefile
runs) from the repository root with output captured; ``isolated(tmp)`` are the overrides that put the run's data,
results and MLflow store under ``tmp`` — never the repository's ``outputs/``, ``data/`` or ``mlruns.db``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def isolated(tmp: str | Path, data: str | Path | None = None, mlflow: str | None = "sqlite") -> list[str]:
    """Overrides keeping a run under ``tmp``. ``data``: another market folder (e.g. one a module's tests share);
    ``mlflow``: ``"sqlite"`` (a store under ``tmp``), ``"off"`` (tracking disabled) or None (the caller's own)."""
    out = [f"paths.runs={tmp}/out", f"paths.data={data or f'{tmp}/data'}"]
    if mlflow == "sqlite":
        out += [f"tracking.uri=sqlite:///{tmp}/mlruns.db", f"tracking.artifact_root={tmp}/art"]
    elif mlflow == "off":
        out.append("tracking.enabled=false")
    return out


def argv(*args: str) -> list[str]:
    """The command line of ``python -m quantsam <args>`` (for tests that start it with ``Popen``: kills, races)."""
    return [sys.executable, "-m", "quantsam", *map(str, args)]


def quantsam(*args: str, timeout: float = 900, cwd: str | Path = ROOT) -> subprocess.CompletedProcess:
    """``python -m quantsam <args>`` from the repository root, stdout/stderr captured as text."""
    return subprocess.run(argv(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout)
