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


def ic_sample_losses(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-name terms whose mean is :func:`ic_loss` (up to its 1e-12): with ``z`` the z-scores over the names with a
    finite label (population std), ``-corr(p, y) = mean_i [(z_p,i - z_y,i)^2 / 2 - 1]`` since ``mean z^2 = 1`` and
    ``mean z_p z_y = corr``. NaN for names without a label. ESAM's data selection ranks names by these."""
    ok = torch.isfinite(target)
    p, y = pred[ok], target[ok]
    zp = (p - p.mean()) / (torch.sqrt(((p - p.mean()) ** 2).mean()) + 1e-12)
    zy = (y - y.mean()) / (torch.sqrt(((y - y.mean()) ** 2).mean()) + 1e-12)
    out = torch.full_like(pred, float("nan"))
    out[ok] = 0.5 * (zp - zy) ** 2 - 1.0
    return out


def mse_sample_losses(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-name squared errors (NaN where the label is missing); their mean is :func:`mse_loss`."""
    return (pred - target) ** 2


LOSSES = {"ic": ic_loss, "mse": mse_loss}
#: loss -> its per-sample decomposition (for ESAM's sharpness-sensitive data selection)
SAMPLE_LOSSES = {ic_loss: ic_sample_losses, mse_loss: mse_sample_losses}
