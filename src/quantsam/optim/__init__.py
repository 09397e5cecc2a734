"""Seven optimizers behind one protocol ``loss = opt.step(closure)``: AdamW, SAM, ASAM, GSAM, GAM, FSAM, WSAM."""

from quantsam.optim.factory import (
    BASE_KWARGS,
    build_optimizer,
    config_kwargs,
    list_optimizers,
    optimizer_class,
    valid_kwargs,
)
from quantsam.optim.protocol import BaseOptimizer

__all__ = ["BASE_KWARGS", "BaseOptimizer", "build_optimizer", "config_kwargs", "list_optimizers", "optimizer_class",
           "valid_kwargs"]
