"""Twelve optimizers behind one protocol ``loss = opt.step(closure)``: AdamW; SAM, ASAM, GSAM, GAM, FSAM, WSAM;
the efficiency variants LookSAM, ESAM, MESA, RST; and the composite CSAM — usable in any PyTorch loop
(``from quantsam.optim import GSAM``; importing this package pulls torch only)."""

from quantsam.optim.csam import CSAM
from quantsam.optim.esam import ESAM
from quantsam.optim.factory import (
    ARM_KEYS,
    BASE_KWARGS,
    arm_name,
    build_optimizer,
    config_kwargs,
    epoch_scale,
    list_optimizers,
    optimizer_class,
    optimizer_kwargs,
    valid_kwargs,
)
from quantsam.optim.fsam import FSAM
from quantsam.optim.gam import GAM
from quantsam.optim.gsam import GSAM
from quantsam.optim.looksam import LookSAM
from quantsam.optim.mesa import MESA
from quantsam.optim.protocol import AdamW, BaseOptimizer
from quantsam.optim.rst import RST
from quantsam.optim.sam import ASAM, SAM
from quantsam.optim.wsam import WSAM

__all__ = ["ARM_KEYS", "ASAM", "BASE_KWARGS", "CSAM", "ESAM", "FSAM", "GAM", "GSAM", "MESA", "RST", "SAM", "WSAM",
           "AdamW", "BaseOptimizer", "LookSAM", "arm_name", "build_optimizer", "config_kwargs", "epoch_scale",
           "list_optimizers", "optimizer_class", "optimizer_kwargs", "valid_kwargs"]
