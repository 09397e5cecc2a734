"""Training losses on one trading day's cross-section."""

from __future__ import annotations

import torch


def ic_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative Pearson IC between predictions and labels over names with a finite label (the study's loss)."""
    ok = torch.isfinite(target)
    p, y = pred[ok], target[ok]
    pc, yc = p - p.mean(), y - y.mean()
    return -(pc * yc).sum() / (torch.sqrt((pc * pc).sum() * (yc * yc).sum()) + 1e-12)


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over names with a finite label."""
    ok = torch.isfinite(target)
    return torch.mean((pred[ok] - target[ok]) ** 2)


LOSSES = {"ic": ic_loss, "mse": mse_loss}
