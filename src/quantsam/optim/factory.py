"""Optimizer registry: ``build_optimizer(name, params, lr=..., weight_decay=..., **variant_kwargs)``."""

from __future__ import annotations

from collections.abc import Iterable

from quantsam.optim.fsam import FSAM
from quantsam.optim.gam import GAM
from quantsam.optim.gsam import GSAM
from quantsam.optim.protocol import AdamW, BaseOptimizer
from quantsam.optim.sam import ASAM, SAM
from quantsam.optim.wsam import WSAM

REGISTRY: dict[str, type[BaseOptimizer]] = {
    "adamw": AdamW, "sam": SAM, "asam": ASAM, "gsam": GSAM, "gam": GAM, "fsam": FSAM, "wsam": WSAM,
}
BASE_KWARGS = ("lr", "weight_decay", "betas", "eps", "grad_clip")
#: keys of the ``optimizer`` config group besides ``name``: no ``grad_clip`` (that knob is ``trainer.grad_clip``)
CONFIG_BASE_KWARGS = ("lr", "weight_decay", "betas", "eps")


def list_optimizers() -> list[str]:
    """Names accepted by :func:`build_optimizer` (and by ``optimizer=<name>`` in Hydra)."""
    return list(REGISTRY)


def valid_kwargs(name: str) -> list[str]:
    """Keyword arguments accepted for optimizer ``name``."""
    cls = optimizer_class(name)
    return [*BASE_KWARGS, *cls.hyperparameters]


def config_kwargs(name: str) -> list[str]:
    """Keys the ``optimizer`` config group may hold for optimizer ``name`` (besides ``name``)."""
    return [*CONFIG_BASE_KWARGS, *optimizer_class(name).hyperparameters]


def optimizer_class(name: str) -> type[BaseOptimizer]:
    key = str(name).lower()
    if key not in REGISTRY:
        raise ValueError(f"unknown optimizer '{name}': valid names are {list_optimizers()}")
    return REGISTRY[key]


def build_optimizer(name: str, params: Iterable, **kwargs) -> BaseOptimizer:
    """Build optimizer ``name`` over ``params`` (``model.parameters()`` or ``model.named_parameters()``).

    Raises ``ValueError`` for an unknown name or a bad value, ``TypeError`` for an unknown keyword argument
    (the message lists the valid ones).
    """
    cls = optimizer_class(name)
    allowed = valid_kwargs(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"optimizer '{name}' got unknown argument(s) {unknown}; valid: {allowed}")
    return cls(params, **kwargs)
