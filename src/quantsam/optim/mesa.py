"""MESA — Du, Zhou, Feng, Tan, Zhou, "Sharpness-Aware Training for Free", NeurIPS 2022 (Sec. 4.3, "memory-efficient
sharpness-aware training"). SAF, the paper's main method, keeps every training sample's outputs from E epochs ago;
MESA replaces that memory with an exponential moving average of the weights as the teacher, and needs about one
pass per step (one gradient evaluation plus one forward of the teacher)::

    w_ema <- beta w_ema + (1 - beta) w                                    (after each step; starts at the initial w)
    loss   = L(f_w(x), y) + lambda * L_traj(f_w(x), f_{w_ema}(x))          (from step start_step on)
    w     <- AdamW(w, grad loss)

The paper's trajectory loss is ``tau^2 KL(softmax(f_ema / tau) || softmax(f_w / tau))`` for classifiers. A GRU factor
model outputs one score per name, trained by the per-day IC; the natural counterpart — and the one used here — is
the training loss itself with the teacher's predictions as the labels: ``L_traj = -corr(f_w(x), f_ema(x))`` over the
day's names (``mse`` when ``trainer.loss=mse``). It penalises the same thing — moving away from the averaged
trajectory's ranking of the cross-section — and is scale-free like the IC. The closure must offer
``predict()`` and the teacher term (:class:`quantsam.optim.closure.BatchClosure`). ``step`` returns the task loss.

SAF itself is not provided: its memory is indexed by training sample, and our samples (a stock on a date, with a
random subset of names per batch) would need a ``[dates, names]`` buffer per epoch lag, outside the closure protocol;
the authors present MESA as the variant for large data. Defaults ``lmbda = 0.8`` and ``beta = 0.9995`` are the
paper's ImageNet settings as reported there; ``start_step = 0`` (the paper starts after a few epochs; set it in
steps here).
"""

from __future__ import annotations

import torch
from torch import Tensor

from quantsam.optim.closure import require
from quantsam.optim.protocol import BaseOptimizer, Closure, check_range


class MESA(BaseOptimizer):
    """Memory-efficient sharpness-aware training on an AdamW base (see module docstring)."""

    passes = 1
    family = "efficiency"
    hyperparameters = ("lmbda", "ema_decay", "start_step")

    def __init__(self, params, lmbda: float = 0.8, ema_decay: float = 0.9995, start_step: int = 0, **base):
        self.lmbda = check_range("lmbda", lmbda, 0.0)
        self.ema_decay = check_range("ema_decay", ema_decay, 0.0, 1.0, hi_open=True)
        self.start_step = int(check_range("start_step", start_step, 0.0))
        super().__init__(params, **base)

    def _ema(self) -> list[Tensor]:
        out = []
        for p in self._params():
            st = self.state[p]
            if "ema" not in st:
                st["ema"] = p.detach().clone()
            out.append(st["ema"])
        return out

    def _direction(self, closure: Closure) -> Tensor:
        ema = self._ema()
        if self.steps < self.start_step or self.lmbda == 0.0:
            return self._eval(closure)
        predict = require(closure, "predict", "MESA", "the EMA teacher's predictions on the batch")
        params = self._params()
        backup = torch._foreach_mul(params, 1.0)
        torch._foreach_copy_(params, ema)
        teacher = predict().detach()
        self.forward_evals += 1
        self._restore(params, backup)
        return self._eval(lambda: closure(teacher=teacher, teacher_weight=self.lmbda))

    def _after_base_step(self, ps: list[Tensor]) -> None:
        params = self._params()
        ema = self._ema()
        torch._foreach_mul_(ema, self.ema_decay)
        torch._foreach_add_(ema, params, alpha=1.0 - self.ema_decay)
