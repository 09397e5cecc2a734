"""Seven optimizers behind one protocol ``loss = opt.step(closure)``: AdamW, SAM, ASAM, GSAM, GAM, FSAM, WSAM."""

from quantsam.optim.factory import build_optimizer, list_optimizers, optimizer_class, valid_kwargs
from quantsam.optim.protocol import BaseOptimizer

__all__ = ["BaseOptimizer", "build_optimizer", "list_optimizers", "optimizer_class", "valid_kwargs"]
