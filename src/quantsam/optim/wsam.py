"""WSAM — Yue, Jiang, Ye, Gao, Liu, Zhang, "Sharpness-Aware Minimization Revisited: Weighted Sharpness as a
Regularization Term", KDD 2023 (official code: Ant Group's dlrover, ``atorch/atorch/optimizers/wsam.py``).
The objective is ``L(w) + gamma / (1 - gamma) * (max_{||e||<=rho} L(w + e) - L(w))``; with alpha = gamma / (1 - gamma)::

    g   = grad L(w);  e = rho * g / (||g|| + 1e-12);  g_p = grad L(w + e)
    (optional) clip g and g_p to global norm max_norm, each after it is computed (official order)
    decoupled (Alg. 2, default):  w <- AdamW(w, g);  then  w <- w - lr * alpha * (g_p - g)
    coupled:                      w <- AdamW(w, alpha * g_p + (1 - alpha) * g)

The perturbation uses the unclipped g, as in the official code. ``max_norm`` defaults to None here (the official class
defaults to 1.0, but the paper's algorithm has no clipping; the trainer's ``grad_clip`` is the common knob).
"""

from __future__ import annotations

import torch
from torch import Tensor

from quantsam.optim.protocol import BaseOptimizer, Closure, check_range, global_norm


def _clip_(grads: list[Tensor], max_norm: float) -> None:
    """In-place global-norm clip with torch's ``clip_grad_norm_`` convention ``coef = max_norm / (norm + 1e-6)``."""
    coef = torch.clamp(max_norm / (global_norm(grads) + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef)


class WSAM(BaseOptimizer):
    """Weighted SAM on an AdamW base (see module docstring)."""

    passes = 2
    hyperparameters = ("rho", "gamma", "decouple", "max_norm")

    def __init__(self, params, rho: float = 0.05, gamma: float = 0.9, decouple: bool = True,
                 max_norm: float | None = None, **base):
        self.rho = check_range("rho", rho, 0.0)
        self.gamma = check_range("gamma", gamma, 0.0, 1.0, hi_open=True)
        if not isinstance(decouple, bool):
            raise ValueError(f"decouple={decouple!r} must be true or false")
        self.decouple = decouple
        self.max_norm = None if max_norm is None else check_range("max_norm", max_norm, 0.0, lo_open=True)
        self.alpha = self.gamma / (1.0 - self.gamma)
        self._sharpness: list[Tensor] | None = None
        super().__init__(params, **base)

    def _direction(self, closure: Closure) -> Tensor:
        loss = self._eval(closure)
        ps, g = self._active()
        backup = self._perturb(ps, torch._foreach_mul(g, self.rho / (global_norm(g) + 1e-12)))
        if self.max_norm is not None:
            _clip_(g, self.max_norm)
        self._eval(closure)
        gp = self._grads_of(ps)
        self._restore(ps, backup)
        if self.max_norm is not None:
            _clip_(gp, self.max_norm)
        if self.decouple:
            self._sharpness = torch._foreach_sub(gp, g)
            self._set_grads(ps, g)
        else:
            self._sharpness = None
            self._set_grads(ps, torch._foreach_add(torch._foreach_mul(gp, self.alpha), g, alpha=1.0 - self.alpha))
        return loss

    def _after_base_step(self, ps: list[Tensor]) -> None:
        if self._sharpness is not None:
            torch._foreach_add_(ps, self._sharpness, alpha=-self._lr() * self.alpha)
            self._sharpness = None
