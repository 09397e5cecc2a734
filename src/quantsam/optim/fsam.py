"""Friendly SAM (F-SAM) — Li, Zhou, He, Cheng, Huang, "Friendly Sharpness-Aware Minimization", CVPR 2024 (official
code: github.com/nblt/F-SAM, class ``FriendlySAM`` in ``utils.py``). The perturbation removes an EMA estimate of the
full gradient so that only the batch-specific noise direction is used::

    g    = grad L(w)
    first step:  m = g;  d = g                            (the official code stores g and does not subtract)
    later:       d = g - sigma * m_{t-1};  m_t = lmbda * m_{t-1} + (1 - lmbda) * g
    e    = rho * d / (||d|| + 1e-12)
    g_p  = grad L(w + e);   w <- AdamW(w, g_p)

Note the official code subtracts the EMA value **before** its update with the current gradient (``m_{t-1}``); we do
the same. Defaults rho 0.05, sigma 1, lmbda 0.9 follow the paper's CIFAR settings (``run.sh`` uses 0.6-0.95 for lmbda).
"""

from __future__ import annotations

import torch
from torch import Tensor

from quantsam.optim.protocol import BaseOptimizer, Closure, check_range, global_norm


class FSAM(BaseOptimizer):
    """Friendly SAM on an AdamW base (see module docstring)."""

    passes = 2
    hyperparameters = ("rho", "sigma", "lmbda")

    def __init__(self, params, rho: float = 0.05, sigma: float = 1.0, lmbda: float = 0.9, **base):
        self.rho = check_range("rho", rho, 0.0)
        self.sigma = check_range("sigma", sigma, 0.0)
        self.lmbda = check_range("lmbda", lmbda, 0.0, 1.0, hi_open=True)
        super().__init__(params, **base)

    def _direction(self, closure: Closure) -> Tensor:
        loss = self._eval(closure)
        ps, g = self._active()
        d = noise_direction(self, ps, g, self.sigma, self.lmbda)
        e = torch._foreach_mul(d, self.rho / (global_norm(d) + 1e-12))
        self._set_grads(ps, self._grads_at(ps, e, closure))
        return loss


def noise_direction(opt: BaseOptimizer, ps: list[Tensor], g: list[Tensor], sigma: float, lmbda: float) -> list[Tensor]:
    """F-SAM's ascent direction ``g - sigma m_{t-1}`` (``g`` on the first step), updating the EMA ``m`` kept in
    ``opt.state[p]["momentum"]`` (shared by FSAM and CSAM)."""
    d = []
    for p, gi in zip(ps, g, strict=True):
        st = opt.state[p]
        if "momentum" not in st:
            st["momentum"] = gi.clone()
            d.append(gi)
        else:
            m = st["momentum"]
            d.append(gi - sigma * m)
            m.mul_(lmbda).add_(gi, alpha=1.0 - lmbda)
    return d
