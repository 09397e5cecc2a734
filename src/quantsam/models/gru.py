"""The study's GRU factor model: a pure ``nn.Module`` (input 6 -> hidden 64, 2 layers; last hidden state -> score)."""

from __future__ import annotations

import torch
from torch import nn


class GRUFactor(nn.Module):
    """``[n, L, F]`` windows -> ``[n]`` scores: GRU, then ``Linear(hidden, 1)`` on the last step's hidden state."""

    def __init__(self, input_size: int = 6, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(out[:, -1]).squeeze(-1)


def build_model(cfg) -> GRUFactor:
    """From the ``model`` config group."""
    return GRUFactor(int(cfg.input_size), int(cfg.hidden_size), int(cfg.num_layers), float(cfg.dropout))
