"""OmegaConf resolvers used by ``conf/``: ``${qs_root:}`` = the project root."""

from __future__ import annotations

from omegaconf import OmegaConf

from quantsam.paths import project_root


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("qs_root"):
        OmegaConf.register_new_resolver("qs_root", lambda: str(project_root()))
    if not OmegaConf.has_resolver("qs_arm"):
        # the study arm's name in run / sweep directories: optimizer.arm when set, else optimizer.name
        OmegaConf.register_new_resolver("qs_arm", lambda name, arm=None: str(arm) if arm else str(name))
