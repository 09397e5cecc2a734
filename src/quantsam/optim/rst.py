"""RST — Zhao, Zhang, Hu, "Randomized Sharpness-Aware Training for Boosting Computational Efficiency in Deep
Learning", arXiv 2203.09962 (2022). Each step is a Bernoulli trial: with probability ``p_t`` a SAM step (two
evaluations, :func:`quantsam.optim.sam.sam_direction`), otherwise a plain base-optimizer step (one)::

    u ~ U(0, 1) from the optimizer's own generator
    u < p_t:  d = grad L(w + rho g / ||g||)      else:  d = grad L(w)
    w <- AdamW(w, d)

``p_t`` follows a scheduling function: constant ``p`` (default 0.5, the setting with which the paper saves half of
SAM's extra cost), or linear from ``p`` to ``p_end`` over ``p_steps`` steps (the paper studies constant and
increasing schedules). About ``1 + p`` evaluations per step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from quantsam.optim.protocol import BaseOptimizer, Closure, check_range
from quantsam.optim.sam import sam_direction


class RST(BaseOptimizer):
    """Randomized sharpness-aware training on an AdamW base (see module docstring)."""

    passes = 2  # on its SAM steps; 1 otherwise (expected_passes)
    family = "efficiency"
    hyperparameters = ("rho", "p", "p_end", "p_steps", "seed")

    def __init__(self, params, rho: float = 0.05, p: float = 0.5, p_end: float | None = None, p_steps: int = 1000,
                 seed: int | None = None, **base):
        self.rho = check_range("rho", rho, 0.0)
        self.p = check_range("p", p, 0.0, 1.0)
        self.p_end = None if p_end is None else check_range("p_end", p_end, 0.0, 1.0)
        self.p_steps = int(check_range("p_steps", p_steps, 1.0))
        super().__init__(params, **base)
        self.seed = self._seed_rng(seed)
        self.sam_steps = 0

    def p_t(self) -> float:
        """The SAM probability of the next step."""
        if self.p_end is None:
            return self.p
        return self.p + (self.p_end - self.p) * min(1.0, self.steps / self.p_steps)

    def expected_passes(self) -> float:
        return 1.0 + (self.p if self.p_end is None else 0.5 * (self.p + self.p_end))

    def _direction(self, closure: Closure) -> Tensor:
        if float(torch.rand((), generator=self._gen)) < self.p_t():
            self.sam_steps += 1
            return sam_direction(self, closure, self.rho)
        return self._eval(closure)

    def _scalars(self) -> dict:
        return {**super()._scalars(), "sam_steps": self.sam_steps}
