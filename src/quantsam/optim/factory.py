"""Optimizer registry: ``build_optimizer(name, params, lr=..., weight_decay=..., **variant_kwargs)``."""

from __future__ import annotations

from collections.abc import Iterable

from quantsam.optim.csam import CSAM
from quantsam.optim.esam import ESAM
from quantsam.optim.fsam import FSAM
from quantsam.optim.gam import GAM
from quantsam.optim.gsam import GSAM
from quantsam.optim.looksam import LookSAM
from quantsam.optim.mesa import MESA
from quantsam.optim.protocol import AdamW, BaseOptimizer
from quantsam.optim.rst import RST
from quantsam.optim.sam import ASAM, SAM
from quantsam.optim.wsam import WSAM

#: registry order = report order: the baseline, the AI-84 report's six + WSAM, the efficiency variants, the composite
REGISTRY: dict[str, type[BaseOptimizer]] = {
    "adamw": AdamW, "sam": SAM, "asam": ASAM, "gsam": GSAM, "gam": GAM, "fsam": FSAM, "wsam": WSAM,
    "looksam": LookSAM, "esam": ESAM, "mesa": MESA, "rst": RST, "csam": CSAM,
}
#: keys of the ``optimizer`` config group that describe the study arm, not the optimizer: ``arm`` (its name in work
#: dirs, MLflow and the report; default the optimizer's name) and ``match_passes`` (compute-matched arm: train with the
#: gradient-evaluation budget of a ``match_passes``-pass optimizer — epochs and patience scaled by match / own passes)
ARM_KEYS = ("arm", "match_passes")
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
    return [*CONFIG_BASE_KWARGS, *ARM_KEYS, *optimizer_class(name).hyperparameters]


def optimizer_kwargs(optimizer_cfg: dict) -> dict:
    """The keyword arguments of :func:`build_optimizer` from an ``optimizer`` config (name and arm keys dropped)."""
    kw = {k: v for k, v in optimizer_cfg.items() if k != "name" and k not in ARM_KEYS}
    if "betas" in kw:
        kw["betas"] = tuple(kw["betas"])
    return kw


def arm_name(optimizer_cfg) -> str:
    """The study arm's name: ``optimizer.arm`` when set, else the optimizer's name."""
    arm = optimizer_cfg.get("arm") if hasattr(optimizer_cfg, "get") else None
    return str(arm) if arm else str(optimizer_cfg["name"])


def epoch_scale(optimizer_cfg) -> float:
    """Compute matching: ``match_passes / passes`` of the optimizer (1 when not matched)."""
    match = optimizer_cfg.get("match_passes") if hasattr(optimizer_cfg, "get") else None
    if match is None:
        return 1.0
    return float(match) / float(optimizer_class(str(optimizer_cfg["name"])).passes)


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
