"""Config schemas (the one source of defaults), resolvers, validation and composition helpers."""

from __future__ import annotations

from omegaconf import DictConfig

from quantsam.config.resolvers import register_resolvers
from quantsam.config.schema import register_schemas
from quantsam.config.validate import validate

__all__ = ["compose", "register", "register_resolvers", "register_schemas", "validate"]


def register() -> None:
    """Resolvers and schema defaults, before Hydra composes anything (idempotent)."""
    register_resolvers()
    register_schemas()


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """Compose the config like the CLI does (for tests and notebooks), without changing directory or logging."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from quantsam.paths import config_dir

    register()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []), return_hydra_config=False)
