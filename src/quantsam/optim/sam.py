"""SAM and ASAM.

SAM — Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for Efficiently Improving Generalization",
ICLR 2021 (official code: github.com/google-research/sam; PyTorch reference: github.com/davda54/sam). Eq. (2)-(3)::

    g   = grad L(w)
    e   = rho * g / (||g||_2 + 1e-12)
    g_p = grad L(w + e)
    w  <- AdamW(w, g_p)

ASAM — Kwon, Kim, Park, Choi, "ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant Learning of Deep
Neural Networks", ICML 2021 (official code: github.com/SamsungLabs/ASAM, ``asam.py``). With the normalisation operator
``T_w = |w| + eta`` (element-wise) on weight tensors::

    e   = rho * T_w^2 g / (||T_w g||_2 + 1e-16)
    g_p = grad L(w + e);  w <- AdamW(w, g_p)

As in the official code, only tensors named ``*weight*`` are scaled (biases use ``T_w = 1``), and the 1e-16 is added
to the norm. When parameters come without names (``model.parameters()``), tensors with ``ndim >= 2`` count as weights
(for the GRU and Linear layers here this is the same set as the official name rule).
"""

from __future__ import annotations

import torch
from torch import Tensor

from quantsam.optim.protocol import BaseOptimizer, Closure, check_range, global_norm


class SAM(BaseOptimizer):
    """Sharpness-Aware Minimization on an AdamW base (see module docstring for the update)."""

    passes = 2
    hyperparameters = ("rho",)

    def __init__(self, params, rho: float = 0.05, **base):
        self.rho = check_range("rho", rho, 0.0)
        super().__init__(params, **base)

    def _direction(self, closure: Closure) -> Tensor:
        loss = self._eval(closure)
        ps, g = self._active()
        scale = self.rho / (global_norm(g) + 1e-12)
        e = torch._foreach_mul(g, scale)
        backup = self._perturb(ps, e)
        self._eval(closure)
        gp = self._grads_of(ps)
        self._restore(ps, backup)
        self._set_grads(ps, gp)
        return loss


class ASAM(BaseOptimizer):
    """Adaptive SAM on an AdamW base (see module docstring for the update)."""

    passes = 2
    hyperparameters = ("rho", "eta")

    def __init__(self, params, rho: float = 0.5, eta: float = 0.01, **base):
        self.rho = check_range("rho", rho, 0.0)
        self.eta = check_range("eta", eta, 0.0)
        params = list(params)
        super().__init__(params, **base)
        self._is_weight = {
            id(p): ("weight" in n) if n is not None else p.ndim >= 2
            for p, n in zip(self._params(), self.param_names, strict=True)
        }

    def _direction(self, closure: Closure) -> Tensor:
        loss = self._eval(closure)
        ps, g = self._active()
        t_w = [p.abs().add_(self.eta) if self._is_weight[id(p)] else None for p in ps]
        tg = [gi * t if t is not None else gi for gi, t in zip(g, t_w, strict=True)]
        scale = self.rho / (global_norm(tg) + 1e-16)
        e = [(x * t if t is not None else x) * scale for x, t in zip(tg, t_w, strict=True)]
        backup = self._perturb(ps, e)
        self._eval(closure)
        gp = self._grads_of(ps)
        self._restore(ps, backup)
        self._set_grads(ps, gp)
        return loss
