"""Twelve optimizers behind one protocol ``loss = opt.step(closure)``: AdamW; SAM, ASAM, GSAM, GAM, FSAM, WSAM;
the efficiency variants LookSAM, ESAM, MESA, RST; and the composite CSAM."""

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
from quantsam.optim.protocol import BaseOptimizer

__all__ = ["ARM_KEYS", "BASE_KWARGS", "BaseOptimizer", "arm_name", "build_optimizer", "config_kwargs", "epoch_scale",
           "list_optimizers", "optimizer_class", "optimizer_kwargs", "valid_kwargs"]
