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
        return sam_direction(self, closure, self.rho)


def sam_direction(opt: BaseOptimizer, closure: Closure, rho: float) -> Tensor:
    """SAM's two evaluations on ``opt`` (Eq. 2-3): leaves ``grad L(w + e)`` in ``p.grad``, returns the clean loss.
    Shared by SAM, LookSAM's full steps and RST's SAM steps."""
    loss = opt._eval(closure)
    ps, g = opt._active()
    scale = rho / (global_norm(g) + 1e-12)
    opt._set_grads(ps, opt._grads_at(ps, torch._foreach_mul(g, scale), closure))
    return loss


def weight_flags(opt: BaseOptimizer) -> dict[int, bool]:
    """ASAM's rule for which tensors ``T_w`` scales: named ``*weight*``, or ``ndim >= 2`` when unnamed."""
    return {id(p): ("weight" in n) if n is not None else p.ndim >= 2
            for p, n in zip(opt._params(), opt.param_names, strict=True)}


class ASAM(BaseOptimizer):
    """Adaptive SAM on an AdamW base (see module docstring for the update)."""

    passes = 2
    hyperparameters = ("rho", "eta")

    def __init__(self, params, rho: float = 0.5, eta: float = 0.01, **base):
        self.rho = check_range("rho", rho, 0.0)
        self.eta = check_range("eta", eta, 0.0)
        super().__init__(params, **base)
        self._is_weight = weight_flags(self)

    def _direction(self, closure: Closure) -> Tensor:
        loss = self._eval(closure)
        ps, g = self._active()
        t_w = [p.abs().add_(self.eta) if self._is_weight[id(p)] else None for p in ps]
        tg = [gi * t if t is not None else gi for gi, t in zip(g, t_w, strict=True)]
        scale = self.rho / (global_norm(tg) + 1e-16)
        e = [(x * t if t is not None else x) * scale for x, t in zip(tg, t_w, strict=True)]
        self._set_grads(ps, self._grads_at(ps, e, closure))
        return loss
