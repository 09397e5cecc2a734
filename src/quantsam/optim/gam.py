"""GAM — Zhang, Xu, Yu, Zou, Cui, "Gradient Norm Aware Minimization Seeks First-Order Flatness and Improves
Generalization", CVPR 2023 (official code: github.com/xxgege/GAM, ``gam/gam.py``). The released (accelerated) version,
App. D of the paper, uses four gradient evaluations per step::

    g0 = grad L(w)                                              (clean)
    w1 = w + grad_rho * g0 / (||g0|| + 1e-12);        g1 = grad L(w1)
    w2 = w + grad_norm_rho * (g1 - g0) / (||g1 - g0|| + 1e-12); g2 = grad L(w2)
    w3 = w2 + grad_rho * g2 / (||g2|| + 1e-12);       g3 = grad L(w3)
    pro = g0 + |1 - grad_beta_0| * g2                           (official: grad_beta_2 = 1 - grad_beta_0)
    d   = grad_beta_1 * g1 + (1 - grad_beta_1) * g3              (official: grad_beta_3 = 1 - grad_beta_1)
    cos = <pro, d> / (||d|| ||pro|| + 1e-12)
    d  <- d - grad_gamma * (pro - cos * ||pro|| * d / (||d|| + 1e-12))
    w  <- AdamW(w, d)

Names follow the official arguments; defaults (0.02, 0.2, 0.5, 0.6, 0.03) are its CIFAR-100/ResNet choice in
``main_cifar.py``. The official code sets grad_rho / grad_norm_rho through schedulers; here they are constants.
"""

from __future__ import annotations

import torch
from torch import Tensor

from quantsam.optim.protocol import BaseOptimizer, Closure, check_range, dot, global_norm


class GAM(BaseOptimizer):
    """Gradient-norm aware minimization on an AdamW base (see module docstring)."""

    passes = 4
    hyperparameters = ("grad_rho", "grad_norm_rho", "grad_beta_0", "grad_beta_1", "grad_gamma")

    def __init__(self, params, grad_rho: float = 0.02, grad_norm_rho: float = 0.2, grad_beta_0: float = 0.5,
                 grad_beta_1: float = 0.6, grad_gamma: float = 0.03, **base):
        self.grad_rho = check_range("grad_rho", grad_rho, 0.0)
        self.grad_norm_rho = check_range("grad_norm_rho", grad_norm_rho, 0.0)
        self.grad_beta_0 = check_range("grad_beta_0", grad_beta_0, 0.0, 1.0)
        self.grad_beta_1 = check_range("grad_beta_1", grad_beta_1, 0.0, 1.0)
        self.grad_gamma = check_range("grad_gamma", grad_gamma, 0.0)
        super().__init__(params, **base)

    def _direction(self, closure: Closure) -> Tensor:
        loss = self._eval(closure)
        ps, g0 = self._active()
        backup = self._perturb(ps, torch._foreach_mul(g0, self.grad_rho / (global_norm(g0) + 1e-12)))
        self._eval(closure)
        g1 = self._grads_of(ps)
        self._restore(ps, backup)
        diff = torch._foreach_sub(g1, g0)
        torch._foreach_add_(ps, torch._foreach_mul(diff, self.grad_norm_rho / (global_norm(diff) + 1e-12)))
        self._eval(closure)
        g2 = self._grads_of(ps)
        torch._foreach_add_(ps, torch._foreach_mul(g2, self.grad_rho / (global_norm(g2) + 1e-12)))
        self._eval(closure)
        g3 = self._grads_of(ps)
        pro = torch._foreach_add(g0, g2, alpha=abs(1.0 - self.grad_beta_0))
        d = torch._foreach_add(torch._foreach_mul(g1, self.grad_beta_1), g3, alpha=1.0 - self.grad_beta_1)
        d_norm, pro_norm = global_norm(d), global_norm(pro)
        cos = dot(pro, d) / (d_norm * pro_norm + 1e-12)
        vertical = torch._foreach_sub(pro, torch._foreach_mul(d, cos * pro_norm / (d_norm + 1e-12)))
        torch._foreach_add_(d, vertical, alpha=-self.grad_gamma)
        self._restore(ps, backup)
        self._set_grads(ps, d)
        return loss
