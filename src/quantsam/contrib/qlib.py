"""qlib's GRU trained with any quantsam optimizer: ``quantsam.contrib.qlib.SAMGRU`` for a ``qrun`` workflow.

A qlib user swaps the model block of a workflow (``examples/qlib/workflow_alpha360_samgru.yaml``)::

    model:
      class: SAMGRU
      module_path: quantsam.contrib.qlib
      kwargs: {d_feat: 6, hidden_size: 64, num_layers: 2, lr: 0.001, n_epochs: 200, early_stop: 20,
               batch_size: 800, optimizer: gsam, optimizer_kwargs: {rho: 0.05, alpha: 0.1}}

and runs ``qrun`` as before. Why a subclass of ``qlib.contrib.model.pytorch_gru.GRU`` (qlib 0.9.x): its data
preparation, validation/early stopping, recorder logging, ``predict`` and the network (``GRUModel``) stay qlib's, so
the numbers are comparable with qlib's benchmark row; only the optimizer and the one method that calls it change.
qlib's ``train_epoch`` calls ``loss.backward(); clip_grad_value_(3.0); optimizer.step()`` — one gradient per step,
which a sharpness-aware optimizer cannot use (it needs the loss re-evaluated at perturbed weights), so this class
re-implements that method around the closure protocol ``loss = opt.step(closure)``: the same shuffled full batches
(qlib's ``np.random`` order, the last partial batch dropped), the same value clipping applied to every gradient
evaluation. The subclass depends on these qlib names: ``GRU.__init__``'s arguments, ``self.gru_model``,
``self.loss_fn``, ``self.batch_size``, ``self.device``, ``self.train_optimizer`` (checked by
``tests/integration/test_qlib_adapter.py`` against the installed pyqlib).

``optimizer`` takes any name of :func:`quantsam.optim.list_optimizers` (``adamw``, ``sam``, ``asam``, ``gsam``,
``gam``, ``fsam``, ``wsam``, ``looksam``, ...); ``optimizer_kwargs`` its hyperparameters (e.g. ``rho``, ``alpha``);
``lr`` and ``weight_decay`` go to the AdamW base every variant wraps (``adamw`` with ``weight_decay=0`` is qlib's
``adam``). Gradient evaluations are counted in ``grad_evals`` and logged to the qlib recorder as
``cost/grad_evals``.
"""

from __future__ import annotations

import numpy as np
import torch
from qlib.contrib.model.pytorch_gru import GRU

from quantsam.optim import build_optimizer


class SAMGRU(GRU):
    """qlib's GRU (``qlib.contrib.model.pytorch_gru.GRU``) whose training steps go through a quantsam optimizer."""

    def __init__(self, optimizer: str = "gsam", optimizer_kwargs: dict | None = None, lr: float = 0.001,
                 weight_decay: float = 0.0, clip_value: float | None = 3.0, **kwargs):
        kwargs.pop("optimizer", None)
        super().__init__(lr=lr, optimizer="adam", **kwargs)  # qlib builds its Adam; replaced right below
        self.optimizer = str(optimizer).lower()
        self.optimizer_kwargs = dict(optimizer_kwargs or {})
        self.weight_decay = float(weight_decay)
        self.clip_value = None if clip_value is None else float(clip_value)
        self.train_optimizer = build_optimizer(self.optimizer, self.gru_model.named_parameters(), lr=self.lr,
                                               weight_decay=self.weight_decay, **self.optimizer_kwargs)
        self.grad_evals = 0
        self.logger.info("quantsam optimizer %s %s (weight_decay %g, clip_value %s)", self.optimizer,
                         self.optimizer_kwargs, self.weight_decay, self.clip_value)

    def train_epoch(self, x_train, y_train) -> None:
        """One epoch over shuffled full batches (qlib's order and batch rule), each step ``opt.step(closure)``."""
        x = x_train.values
        y = np.squeeze(y_train.values)
        self.gru_model.train()
        order = np.arange(len(x))
        np.random.shuffle(order)  # noqa: NPY002 - qlib's global stream: GRU(seed=...) seeds it, as qlib's loop
        params = [p for p in self.gru_model.parameters() if p.requires_grad]
        for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
            rows = order[start:start + self.batch_size]
            feature = torch.from_numpy(x[rows]).float().to(self.device)
            label = torch.from_numpy(y[rows]).float().to(self.device)

            def closure(feature=feature, label=label):
                self.train_optimizer.zero_grad()
                loss = self.loss_fn(self.gru_model(feature), label)
                loss.backward()
                if self.clip_value is not None:
                    torch.nn.utils.clip_grad_value_(params, self.clip_value)
                return loss

            self.train_optimizer.step(closure)
        self.grad_evals = int(self.train_optimizer.grad_evals)

    def fit(self, dataset, evals_result=None, save_path=None):
        """qlib's ``GRU.fit``, then ``cost/grad_evals`` on the active recorder."""
        out = super().fit(dataset, evals_result=dict() if evals_result is None else evals_result, save_path=save_path)
        try:
            from qlib.workflow import R

            R.get_recorder().log_metrics(**{"cost/grad_evals": float(self.grad_evals)})
        except Exception as e:  # noqa: BLE001 - no active recorder (a plain fit outside qrun): the count stays on self
            self.logger.info("grad_evals %d (not logged: %s)", self.grad_evals, e)
        return out
