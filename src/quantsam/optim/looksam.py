"""LookSAM — Liu, Mai, Chen, Hsieh, You, "Towards Efficient and Scalable Sharpness-Aware Minimization", CVPR 2022,
Alg. 1 (no official code was released; the algorithm below is the paper's). Every ``k``-th step is a full SAM step
that also stores the component of the perturbed gradient orthogonal to the clean one; the steps in between re-use
it, with the adaptive scale of Alg. 1::

    t % k == 0:  g = grad L(w);  g_s = grad L(w + rho g / ||g||)
                 g_v = g_s - ||g_s|| cos(g, g_s) g / ||g||             (stored)
                 d = g_s
    otherwise:   g = grad L(w);  d = g + alpha ||g|| / ||g_v|| g_v      (one evaluation)
    w <- AdamW(w, d)

About ``1 + 1/k`` evaluations per step. Defaults ``k = 5`` and ``alpha = 0.7`` are the paper's ViT/ImageNet choice
(Sec. 5), ``rho = 0.05`` SAM's. The ``1e-12`` in the norms follows the other variants here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from quantsam.optim.protocol import BaseOptimizer, Closure, check_range, dot, global_norm


class LookSAM(BaseOptimizer):
    """LookSAM on an AdamW base (see module docstring)."""

    passes = 2  # on its full steps; 1 in between (expected_passes)
    family = "efficiency"
    hyperparameters = ("rho", "k", "alpha")

    def __init__(self, params, rho: float = 0.05, k: int = 5, alpha: float = 0.7, **base):
        self.rho = check_range("rho", rho, 0.0)
        if isinstance(k, bool) or int(check_range("k", k, 1.0)) != float(k):
            raise ValueError(f"k={k!r} must be an integer >= 1 (a full SAM step every k steps)")
        self.k = int(k)
        self.alpha = check_range("alpha", alpha, 0.0)
        super().__init__(params, **base)

    def expected_passes(self) -> float:
        return 1.0 + 1.0 / self.k

    def _direction(self, closure: Closure) -> Tensor:
        loss = self._eval(closure)
        ps, g = self._active()
        if self.steps % self.k == 0:
            g_norm = global_norm(g)
            gs = self._grads_at(ps, torch._foreach_mul(g, self.rho / (g_norm + 1e-12)), closure)
            gs_norm = global_norm(gs)
            cos = dot(g, gs) / (g_norm * gs_norm + 1e-12)
            gv = torch._foreach_sub(gs, torch._foreach_mul(g, gs_norm * cos / (g_norm + 1e-12)))
            for p, v in zip(ps, gv, strict=True):
                self.state[p]["g_v"] = v
            self._set_grads(ps, gs)
        else:
            gv = [self.state[p]["g_v"] if "g_v" in self.state[p] else torch.zeros_like(p) for p in ps]
            scale = self.alpha * global_norm(g) / (global_norm(gv) + 1e-12)
            self._set_grads(ps, torch._foreach_add(g, torch._foreach_mul(gv, scale)))
        return loss
