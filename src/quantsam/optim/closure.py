"""The closure of one batch, with the two extra doors that data-aware variants need.

Every optimizer accepts any callable ``closure() -> loss`` (forward + backward, torch's LBFGS convention). Two of the
efficiency variants need more than that from the batch, and :class:`BatchClosure` provides it:

* ESAM's sharpness-sensitive data selection needs the **per-sample losses** of the clean pass and at the perturbed
  weights, and a second pass **on a subset of the rows** (``closure(rows=idx)``);
* MESA needs the model's **predictions** on the batch at other (EMA) weights (``closure.predict()``) and a pass whose
  backward includes a **trajectory term** (``closure(teacher=..., teacher_weight=...)``).

``closure(...)`` always returns the task loss of the rows it used (never the regulariser), so ``opt.step`` keeps
returning the clean training loss.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor

LossFn = Callable[[Tensor, Tensor], Tensor]


class BatchClosure:
    """Forward + backward of ``loss_fn(model(x), y)``; see the module docstring.

    ``sample_loss_fn(pred, y) -> [n]`` gives per-sample losses whose mean is the batch loss (for the per-day IC loss:
    :func:`quantsam.train.losses.ic_sample_losses`); it is needed only by ESAM's data selection. ``autocast`` wraps
    every forward pass (``trainer.precision=bf16``); half-precision predictions are cast to float32 before
    any loss.
    """

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor,
                 sample_loss_fn: LossFn | None = None,
                 autocast: Callable[[], AbstractContextManager] = nullcontext):
        self.model, self.loss_fn, self.x, self.y = model, loss_fn, x, y
        self.sample_loss_fn = sample_loss_fn
        self.autocast = autocast
        self.last_sample_losses: Tensor | None = None  # of the last full-batch call, detached
        self.calls = 0

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __call__(self, rows: Tensor | None = None, teacher: Tensor | None = None,
                 teacher_weight: float = 0.0) -> Tensor:
        self.calls += 1
        x, y = (self.x, self.y) if rows is None else (self.x[rows], self.y[rows])
        with self.autocast():
            pred = _full(self.model(x))
        loss = self.loss_fn(pred, y)
        total = loss
        if teacher is not None and teacher_weight:
            # the trajectory loss: the training loss with the teacher's predictions as labels (MESA, see mesa.py)
            total = loss + teacher_weight * self.loss_fn(pred, teacher if rows is None else teacher[rows])
        total.backward()
        if rows is None and self.sample_loss_fn is not None:
            self.last_sample_losses = self.sample_loss_fn(pred.detach(), y)
        return loss

    @torch.no_grad()
    def predict(self) -> Tensor:
        """The model's predictions on the whole batch at the current weights (no graph)."""
        with self.autocast():
            pred = self.model(self.x)
        return _full(pred)

    @torch.no_grad()
    def sample_losses(self) -> Tensor:
        """Per-sample losses on the whole batch at the current weights (no graph)."""
        if self.sample_loss_fn is None:
            raise TypeError("this BatchClosure has no sample_loss_fn: pass one (e.g. train.losses.ic_sample_losses)")
        return self.sample_loss_fn(self.predict(), self.y)


def _full(pred: Tensor) -> Tensor:
    """Predictions from an autocast forward come in bfloat16/float16: the losses are taken in float32."""
    return pred.float() if pred.dtype in (torch.bfloat16, torch.float16) else pred


def require(closure, attr: str, who: str, why: str):
    """``getattr(closure, attr)`` or a TypeError that says what the closure must provide."""
    fn = getattr(closure, attr, None)
    if fn is None or (attr == "sample_losses" and getattr(closure, "sample_loss_fn", 1) is None):
        raise TypeError(f"{who} needs a closure with .{attr}() ({why}): build it with "
                        "quantsam.optim.closure.BatchClosure(model, loss_fn, x, y, sample_loss_fn) — the trainer does")
    return fn
