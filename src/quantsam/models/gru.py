"""The study's GRU factor model: a pure ``nn.Module`` (input 6 -> hidden 64, 2 layers; last hidden state -> score)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from quantsam.models.fused_gru import fused_gru_last

# ``fused=True`` (``model.gru_impl=fused``): :mod:`quantsam.models.fused_gru` where it applies (CPU, float32/64, a
# forward that will be differentiated, no autocast, no dropout while training), ``torch.nn.GRU`` elsewhere — a no-grad
# forward (validation, prediction) is faster through ``nn.GRU``'s native CPU kernel (scripts/bench/real_fit.py
# --gru) and cuDNN serves CUDA; ``fused=False`` (``model.gru_impl=torch``): always ``torch.nn.GRU``


class GRUFactor(nn.Module):
    """``[n, L, F]`` windows -> ``[n]`` scores: GRU, then ``Linear(hidden, 1)`` on the last step's hidden state.

    The parameters are ``torch.nn.GRU``'s (same names, same state dict) whichever implementation runs the forward.
    """

    def __init__(self, input_size: int = 6, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.0,
                 fused: bool = True):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, 1)
        self.fused = fused

    def _fused_applies(self, x: torch.Tensor) -> bool:
        return (self.fused and torch.is_grad_enabled() and x.device.type == "cpu"
                and x.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled("cpu")
                and not (self.training and self.gru.dropout > 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._fused_applies(x):
            last = fused_gru_last(x, self.gru)
        else:
            last = self.gru(x)[0][:, -1]
        return self.head(last).squeeze(-1)


@contextmanager
def reference_gru(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model``'s GRUs through ``torch.nn.GRU`` inside the block (for double backward: Hessian-vector
    products need second derivatives, which the fused GRU's hand-written backward does not provide)."""
    mods = [m for m in model.modules() if isinstance(m, GRUFactor)]
    before = [m.fused for m in mods]
    for m in mods:
        m.fused = False
    try:
        yield model
    finally:
        for m, fused in zip(mods, before, strict=True):
            m.fused = fused


def build_model(cfg) -> GRUFactor:
    """From the ``model`` config group (``model.gru_impl``: fused | torch, checked by the schema)."""
    return GRUFactor(int(cfg.input_size), int(cfg.hidden_size), int(cfg.num_layers), float(cfg.dropout),
                     str(getattr(cfg, "gru_impl", "fused")) == "fused")
