"""GSAM — Zhuang, Gong, Yuan, Cui, Adam, Dvornek, Tatikonda, Duncan, Liu, "Surrogate Gap Guided Sharpness-Aware
Minimization", ICLR 2022 (official code: github.com/juntang-zhuang/GSAM, ``gsam/gsam.py``). Alg. 1::

    g    = grad L(w)                                   (clean gradient)
    e    = rho_t * g / (||g|| + 1e-12)
    g_p  = grad L(w + e)                               (perturbed gradient)
    cos  = <g, g_p> / (||g_p|| ||g|| + 1e-12)
    g_v  = g - cos * ||g|| * g_p / (||g_p|| + 1e-12)   (component of g orthogonal to g_p)
    d    = g_p - alpha * g_v
    w   <- AdamW(w, d)

rho_t is constant ``rho``, or follows the lr when ``rho_max`` and ``rho_min`` are given
(:func:`quantsam.optim.schedules.proportional_rho`), as the official code's ``ProportionScheduler``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from quantsam.optim.protocol import BaseOptimizer, Closure, check_range, dot, global_norm
from quantsam.optim.schedules import proportional_rho


class GSAM(BaseOptimizer):
    """Surrogate-gap guided SAM on an AdamW base (see module docstring)."""

    passes = 2
    hyperparameters = ("rho", "alpha", "rho_max", "rho_min")

    def __init__(self, params, rho: float = 0.05, alpha: float = 0.1, rho_max: float | None = None,
                 rho_min: float | None = None, **base):
        self.rho = check_range("rho", rho, 0.0)
        self.alpha = check_range("alpha", alpha, 0.0)
        self.rho_max, self.rho_min = check_rho_schedule(rho_max, rho_min)
        super().__init__(params, **base)

    def rho_t(self) -> float:
        """rho used by the next step."""
        return scheduled_rho(self)

    def _direction(self, closure: Closure) -> Tensor:
        loss = self._eval(closure)
        ps, g = self._active()
        e = torch._foreach_mul(g, self.rho_t() / (global_norm(g) + 1e-12))
        gp = self._grads_at(ps, e, closure)
        surrogate_gap_descent(gp, g, self.alpha)
        self._set_grads(ps, gp)
        return loss


def surrogate_gap_descent(gp: list[Tensor], g: list[Tensor], alpha: float) -> None:
    """In place ``g_p <- g_p - alpha g_v`` with ``g_v = g - cos(g, g_p) ||g|| g_p / ||g_p||`` (Alg. 1; GSAM, CSAM)."""
    g_norm, gp_norm = global_norm(g), global_norm(gp)
    cos = dot(g, gp) / (gp_norm * g_norm + 1e-12)
    vertical = torch._foreach_sub(g, torch._foreach_mul(gp, cos * g_norm / (gp_norm + 1e-12)))
    torch._foreach_add_(gp, vertical, alpha=-alpha)


def check_rho_schedule(rho_max, rho_min) -> tuple[float | None, float | None]:
    """Both or neither of ``rho_max`` / ``rho_min`` (the lr-proportional rho), in range."""
    if (rho_max is None) != (rho_min is None):
        raise ValueError(f"rho_max={rho_max!r}, rho_min={rho_min!r}: give both (lr-proportional rho) or neither")
    if rho_max is not None:
        check_range("rho_max", rho_max, 0.0)
        check_range("rho_min", rho_min, 0.0, rho_max)
    return rho_max, rho_min


def scheduled_rho(opt) -> float:
    """``opt.rho``, or the lr-proportional rho when ``opt.rho_max`` / ``opt.rho_min`` are set."""
    if opt.rho_max is None:
        return opt.rho
    return proportional_rho(opt._lr(), opt.initial_lr, opt.rho_max, opt.rho_min)
