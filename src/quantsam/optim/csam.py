"""CSAM — a composite sharpness-aware minimizer: the three orthogonal ideas of the study's variants as options of one
optimizer (the AI-84 report's closing suggestion: combine the improvements it tested one at a time).

* **where to perturb** — FSAM's noise-only direction (Li et al., CVPR 2024): ``sigma > 0`` removes an EMA of the
  gradient (``lmbda``) from the ascent direction, ``d = g - sigma m_{t-1}`` (``d = g`` on the first step);
* **how far** — ASAM's scale-adaptive neighbourhood (Kwon et al., ICML 2021): ``adaptive=true`` uses
  ``e = rho T_w^2 d / ||T_w d||`` with ``T_w = |w| + eta`` on weight tensors; else SAM's ``e = rho d / ||d||``;
  ``rho`` may follow the lr (GSAM's ``rho_max`` / ``rho_min``);
* **how to descend** — GSAM's surrogate-gap ascent (Zhuang et al., ICLR 2022): ``alpha > 0`` subtracts ``alpha``
  times the component of the clean gradient orthogonal to the perturbed one, ``d = g_p - alpha g_perp``.

::

    g = grad L(w);  d = g - sigma m_{t-1} (sigma > 0);  e = rho T^2 d / ||T d|| (adaptive) or rho d / ||d||
    g_p = grad L(w + e);  g_perp = g - cos(g, g_p) ||g|| g_p / ||g_p||;  w <- AdamW(w, g_p - alpha g_perp)

Special cases, each equal to the existing optimizer's trajectory (``tests/unit/test_optim_efficient.py``):
``sigma = alpha = 0, adaptive = false`` is SAM; ``adaptive = true`` ASAM; ``alpha > 0`` GSAM; ``sigma > 0`` FSAM.
The operations are those of the four modules, in the same order (norm constants included: ``1e-16`` with the
adaptive norm as ASAM, ``1e-12`` otherwise).
"""

from __future__ import annotations

import torch
from torch import Tensor

from quantsam.optim.fsam import noise_direction
from quantsam.optim.gsam import check_rho_schedule, scheduled_rho, surrogate_gap_descent
from quantsam.optim.protocol import BaseOptimizer, Closure, check_range, global_norm
from quantsam.optim.sam import weight_flags


class CSAM(BaseOptimizer):
    """Composite SAM on an AdamW base (see module docstring)."""

    passes = 2
    family = "combined"
    hyperparameters = ("rho", "adaptive", "eta", "alpha", "sigma", "lmbda", "rho_max", "rho_min")

    def __init__(self, params, rho: float = 0.05, adaptive: bool = False, eta: float = 0.01, alpha: float = 0.0,
                 sigma: float = 0.0, lmbda: float = 0.9, rho_max: float | None = None, rho_min: float | None = None,
                 **base):
        self.rho = check_range("rho", rho, 0.0)
        if not isinstance(adaptive, bool):
            raise ValueError(f"adaptive={adaptive!r} must be true or false")
        self.adaptive = adaptive
        self.eta = check_range("eta", eta, 0.0)
        self.alpha = check_range("alpha", alpha, 0.0)
        self.sigma = check_range("sigma", sigma, 0.0)
        self.lmbda = check_range("lmbda", lmbda, 0.0, 1.0, hi_open=True)
        self.rho_max, self.rho_min = check_rho_schedule(rho_max, rho_min)
        super().__init__(params, **base)
        self._is_weight = weight_flags(self)

    def rho_t(self) -> float:
        return scheduled_rho(self)

    def _ascent(self, ps: list[Tensor], g: list[Tensor]) -> list[Tensor]:
        """FSAM's noise direction (sigma > 0), else the clean gradient."""
        return g if self.sigma == 0.0 else noise_direction(self, ps, g, self.sigma, self.lmbda)

    def _perturbation(self, ps: list[Tensor], d: list[Tensor]) -> list[Tensor]:
        rho = self.rho_t()
        if not self.adaptive:
            return torch._foreach_mul(d, rho / (global_norm(d) + 1e-12))
        t_w = [p.abs().add_(self.eta) if self._is_weight[id(p)] else None for p in ps]
        td = [x * t if t is not None else x for x, t in zip(d, t_w, strict=True)]
        scale = rho / (global_norm(td) + 1e-16)
        return [(x * t if t is not None else x) * scale for x, t in zip(td, t_w, strict=True)]

    def _direction(self, closure: Closure) -> Tensor:
        loss = self._eval(closure)
        ps, g = self._active()
        gp = self._grads_at(ps, self._perturbation(ps, self._ascent(ps, g)), closure)
        if self.alpha > 0.0:
            surrogate_gap_descent(gp, g, self.alpha)
        self._set_grads(ps, gp)
        return loss
