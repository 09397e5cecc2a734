"""OmegaConf resolvers used by ``conf/``: ``${qs_root:}`` = the project root, ``${qs_arm:name,arm}`` = a study arm's
name, ``${qs_writable:path,key}`` = ``path`` once it is known to be (or to be creatable as) a writable folder."""

from __future__ import annotations

from hydra.errors import CompactHydraException
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

from quantsam.paths import project_root


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("qs_root"):
        OmegaConf.register_new_resolver("qs_root", lambda: str(project_root()))
    if not OmegaConf.has_resolver("qs_arm"):
        # the study arm's name in run / sweep directories: optimizer.arm when set, else optimizer.name
        OmegaConf.register_new_resolver("qs_arm", lambda name, arm=None: str(arm) if arm else str(name))
    if not OmegaConf.has_resolver("qs_writable"):
        # Hydra creates its run/sweep dirs under paths.runs / paths.root before any of our code runs: check first
        OmegaConf.register_new_resolver("qs_writable", writable_dir)


class UnwritableFolder(CompactHydraException, InterpolationResolutionError, ValueError):
    """A run/sweep folder under a file or in a folder this user cannot write: Hydra prints the message alone (a
    compact error, no frames) when it resolves ``hydra.run.dir`` / ``hydra.sweep.dir``; OmegaConf passes it through
    (an interpolation error of its own) instead of wrapping it."""


def writable_dir(path, key: str = "paths.runs") -> str:
    """``path`` unchanged when the nearest existing part of it is a folder this user can write into; else an
    :class:`UnwritableFolder` (a ValueError) naming the config key and the fix (Hydra shows the message alone)."""
    import os
    from pathlib import Path

    probe = Path(str(path)).expanduser()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UnwritableFolder(f"{key}={path}: {probe} is a file, not a folder. Fix: point {key} at a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UnwritableFolder(f"{key}={path}: {probe} is not writable by this user. Fix: a writable folder")
    return str(path)
