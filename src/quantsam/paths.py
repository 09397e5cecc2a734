"""Where the project lives: the root holding ``conf/`` (data/, outputs/, mlruns.db are placed beside it)."""

from __future__ import annotations

import os
from pathlib import Path

_PKG_ROOT = Path(__file__).resolve().parents[2]


def project_root() -> Path:
    """``$QUANTSAM_ROOT`` if set; else the checkout this package was installed from (editable install); else cwd."""
    env = os.environ.get("QUANTSAM_ROOT")
    if env:
        return Path(env).resolve()
    if (_PKG_ROOT / "conf" / "config.yaml").exists():
        return _PKG_ROOT
    return Path.cwd().resolve()


def config_dir() -> Path:
    """The Hydra config tree ``conf/``."""
    d = project_root() / "conf"
    if not (d / "config.yaml").exists():
        raise FileNotFoundError(f"no Hydra config tree at {d}. Fix: install from a checkout with `make install` "
                                "(editable) or set QUANTSAM_ROOT to the checkout.")
    return d
