"""ESAM — Du, Yan, Feng, Zhou, Zhen, Goh, Tan, "Efficient Sharpness-aware Minimization for Improved Training of
Neural Networks", ICLR 2022 (official code: github.com/dydjw9/Efficient_SAM, ``utils/Esam.py``). Two savings on
SAM's second pass:

* **Stochastic weight perturbation (SWP)**: each step, each parameter tensor is perturbed with probability ``beta``
  (the official code draws per tensor and freezes the others' ``requires_grad`` for the clean pass, which is where
  the backward work is saved); the perturbation is scaled by ``1 / beta`` to keep its expected size;
* **Sharpness-sensitive data selection (SDS)**: at the perturbed weights, one forward pass without a graph gives
  every sample's loss; only the ``gamma`` share whose loss rose most (``l_i(w + e) - l_i(w)``) enters the second
  forward + backward.

::

    m_j ~ Bernoulli(beta) per tensor;   g = grad_{m} L_B(w)                   (clean pass, unselected tensors frozen)
    e   = rho / beta * g / (||g|| + 1e-12)                                  (on the selected tensors)
    B+  = top ceil(gamma |B|) of  l_i(w + e) - l_i(w)                       (one forward, no graph)
    d   = grad L_{B+}(w + e);   w <- AdamW(w, d)                            (every tensor)

With ``beta = gamma = 1`` this is SAM exactly (test). Our loss is the per-day IC of a cross-section, which is not a
mean of per-name terms as cross-entropy is — but it is one exactly: with ``z`` the batch z-scores (population std),
``-IC = mean_i [ (z_pred,i - z_label,i)^2 / 2 - 1 ]`` (:func:`quantsam.train.losses.ic_sample_losses`), so SDS ranks
names by the change of their own term, and the second pass takes the IC over the selected names. Departures from the
official code, both deliberate: we keep ``max(3, ceil(gamma n))`` names (the official ``> k-th largest`` keeps one
fewer, and a correlation needs >= 3 names); the perturbation norm uses ``1e-12`` (official ``1e-7``) so that the
``beta = gamma = 1`` case is SAM bit for bit. Defaults ``beta = 0.6``, ``gamma = 0.5`` are the paper's CIFAR
settings (Sec. 4), ``rho = 0.05`` SAM's. The clean pass's per-sample losses come from the closure
(:class:`quantsam.optim.closure.BatchClosure`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from quantsam.optim.closure import require
from quantsam.optim.protocol import BaseOptimizer, Closure, check_range, global_norm


class ESAM(BaseOptimizer):
    """Efficient SAM on an AdamW base (see module docstring)."""

    passes = 2  # closure calls; the first is partial (SWP), the second on a gamma share of the batch (SDS)
    family = "efficiency"
    hyperparameters = ("rho", "beta", "gamma", "seed")

    def __init__(self, params, rho: float = 0.05, beta: float = 0.6, gamma: float = 0.5, seed: int | None = None,
                 **base):
        self.rho = check_range("rho", rho, 0.0)
        self.beta = check_range("beta", beta, 0.0, 1.0, lo_open=True)
        self.gamma = check_range("gamma", gamma, 0.0, 1.0, lo_open=True)
        super().__init__(params, **base)
        self.seed = self._seed_rng(seed)

    def _direction(self, closure: Closure) -> Tensor:
        frozen = []
        if self.beta < 1.0:
            params = self._params()
            draw = torch.rand(len(params), generator=self._gen)
            frozen = [p for p, u in zip(params, draw.tolist(), strict=True) if u >= self.beta and p.requires_grad]
        rows = None
        for p in frozen:
            p.requires_grad_(False)
        try:
            loss = self._eval(closure)
        finally:
            for p in frozen:
                p.requires_grad_(True)
        ps, g = self._active()
        before = getattr(closure, "last_sample_losses", None) if self.gamma < 1.0 else None
        backup = self._perturb(ps, torch._foreach_mul(g, self.rho / (global_norm(g) + 1e-12) / self.beta))
        if self.gamma < 1.0:
            sample_losses = require(closure, "sample_losses", "ESAM (gamma < 1)",
                                    "sharpness-sensitive data selection ranks the samples by their loss change")
            if before is None:
                raise TypeError("ESAM (gamma < 1) needs the clean pass's per-sample losses in closure.last_sample_losses"
                                " (BatchClosure with a sample_loss_fn records them)")
            after = sample_losses()
            self.forward_evals += 1
            n = int(after.shape[0])
            k = min(n, max(3, math.ceil(self.gamma * n)))
            if k < n:
                rows = torch.topk(after - before, k).indices.sort().values
        self._eval(closure if rows is None else (lambda: closure(rows=rows)))
        self._restore(ps, backup)  # every tensor now holds grad L_{B+}(w + e)
        return loss
