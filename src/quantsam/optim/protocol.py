"""The optimizer protocol shared by every arm of the study: ``loss = opt.step(closure)``.

``closure()`` runs forward + backward on one batch and returns the loss (torch's LBFGS convention). Every optimizer
here wraps a :class:`torch.optim.AdamW` *base* and shares its ``param_groups`` (so lr schedulers work) and:

* calls the closure for **every** gradient evaluation, the clean one included, with grad enabled; before each call it
  sets ``p.grad = None`` for all parameters, so gradients computed before ``step`` can never leak in;
* leaves parameters that received no gradient (unused in the graph) untouched;
* returns the clean (unperturbed) loss and counts evaluations in ``grad_evals``;
* perturbs and restores weights with ``torch._foreach_*`` ops (one kernel per op, not one per tensor); restoring copies
  the saved weights back, as SAM's and F-SAM's official code do (GSAM/GAM/WSAM's code subtracts the perturbation,
  which differs from the copy only by float rounding);
* round-trips everything through ``state_dict`` / ``load_state_dict`` (AdamW moments, variant buffers, counters).

An optional ``grad_clip`` clips the final update direction's global norm right before the base AdamW step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

Closure = Callable[[], Tensor]


def check_range(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """Raise ``ValueError`` naming ``name`` and its valid range unless ``lo (<|<=) value (<|<=) hi``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} must be a number") from None
    ok = math.isfinite(v)  # inf / NaN are never a valid hyperparameter (rho=inf trains on NaN weights)
    if lo is not None:
        ok &= v > lo if lo_open else v >= lo
    if hi is not None:
        ok &= v < hi if hi_open else v <= hi
    if not ok:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        rng = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
        raise ValueError(f"{name}={value!r} is out of range: must be a finite number in {rng}")
    return v


def split_named(params: Iterable) -> tuple[list[Tensor], list[str | None]]:
    """Accept ``model.parameters()`` or ``model.named_parameters()``; return tensors and names (None if unnamed)."""
    tensors, names = [], []
    for item in params:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Tensor):
            names.append(item[0])
            tensors.append(item[1])
        elif isinstance(item, Tensor):
            names.append(None)
            tensors.append(item)
        else:
            raise TypeError(f"params must be tensors or (name, tensor) pairs, got {type(item).__name__}")
    if not tensors:
        raise ValueError("params is empty: pass model.parameters() or model.named_parameters()")
    return tensors, names


def global_norm(tensors: list[Tensor]) -> Tensor:
    """L2 norm over a list of tensors (one foreach kernel + a stack)."""
    if not tensors:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


def dot(a: list[Tensor], b: list[Tensor]) -> Tensor:
    """Inner product of two tensor lists."""
    return torch.stack([torch.sum(x * y) for x, y in zip(a, b, strict=True)]).sum()


class BaseOptimizer(torch.optim.Optimizer):
    """AdamW base + the closure protocol. Subclasses implement :meth:`_direction`.

    ``_direction(closure)`` evaluates the closure as often as the algorithm needs (via :meth:`_eval`), leaves the
    update direction in ``p.grad`` of the active parameters with the weights restored, and returns the clean loss.
    """

    #: gradient evaluations per step (documentation and tests; counted for real in ``grad_evals``)
    passes: int = 1
    #: variant hyperparameters accepted by ``__init__`` (besides lr, weight_decay, betas, eps, grad_clip)
    hyperparameters: tuple[str, ...] = ()
    #: the report's arm group: baseline | generalisation (the report's seven) | efficiency | combined
    family: str = "generalisation"

    def __init__(self, params: Iterable, lr: float = 1e-3, weight_decay: float = 1e-2,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, grad_clip: float | None = None):
        tensors, names = split_named(params)
        check_range("lr", lr, 0.0, lo_open=True)
        check_range("weight_decay", weight_decay, 0.0)
        check_range("eps", eps, 0.0, lo_open=True)
        if len(betas) != 2:
            raise ValueError(f"betas={betas!r} must be a pair (beta1, beta2)")
        for k, b in zip(("betas[0]", "betas[1]"), betas, strict=True):
            check_range(k, b, 0.0, 1.0, hi_open=True)
        if grad_clip is not None:
            check_range("grad_clip", grad_clip, 0.0, lo_open=True)
        super().__init__(tensors, dict(lr=lr))
        self.base = torch.optim.AdamW(self.param_groups, lr=lr, weight_decay=weight_decay,
                                      betas=tuple(betas), eps=eps)
        self.param_groups = self.base.param_groups  # shared: schedulers and lr changes reach every term
        self.param_names = names
        self.grad_clip = grad_clip
        self.grad_evals = 0
        self.forward_evals = 0  # extra forward-only passes (ESAM's selection, MESA's teacher)
        self.steps = 0
        self.initial_lr = float(lr)
        self._gen: torch.Generator | None = None  # the variant's own random stream (ESAM, RST), in state_dict

    def expected_passes(self) -> float:
        """Gradient evaluations per step on average (LookSAM ``1 + 1/k``, RST ``1 + p``; measured in ``grad_evals``)."""
        return float(self.passes)

    def _seed_rng(self, seed: int | None) -> int:
        """Own generator for the variant's random choices: ``seed``, or one drawn from torch's global generator (so
        the trainer's per-fit ``torch.manual_seed`` makes it reproducible); its state goes into ``state_dict``."""
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self._gen = torch.Generator().manual_seed(int(seed))
        return int(seed)

    # ---- helpers ---------------------------------------------------------------------------------------------
    def _params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def _eval(self, closure: Closure) -> Tensor:
        """One gradient evaluation: clear every grad, run the closure with grad enabled, count it."""
        for p in self._params():
            p.grad = None
        with torch.enable_grad():
            loss = closure()
        self.grad_evals += 1
        if not isinstance(loss, Tensor):
            raise TypeError("closure() must return the loss tensor (it runs forward + backward and returns the loss)")
        return loss.detach()

    def _active(self) -> tuple[list[Tensor], list[Tensor]]:
        """Parameters that received a gradient in the last evaluation, and those gradients."""
        ps = [p for p in self._params() if p.grad is not None]
        return ps, [p.grad for p in ps]

    @staticmethod
    def _set_grads(ps: list[Tensor], grads: list[Tensor]) -> None:
        for p, g in zip(ps, grads, strict=True):
            p.grad = g

    @staticmethod
    def _grads_of(ps: list[Tensor]) -> list[Tensor]:
        return [p.grad if p.grad is not None else torch.zeros_like(p) for p in ps]

    @staticmethod
    def _perturb(ps: list[Tensor], e: list[Tensor]) -> list[Tensor]:
        """Save the weights, then ``w += e``; returns the backup for :meth:`_restore`."""
        backup = torch._foreach_mul(ps, 1.0)
        torch._foreach_add_(ps, e)
        return backup

    @staticmethod
    def _restore(ps: list[Tensor], backup: list[Tensor]) -> None:
        torch._foreach_copy_(ps, backup)

    def _grads_at(self, ps: list[Tensor], e: list[Tensor], closure: Closure) -> list[Tensor]:
        """``grad L(w + e)`` for ``ps``: perturb, one evaluation, restore the weights."""
        backup = self._perturb(ps, e)
        self._eval(closure)
        gp = self._grads_of(ps)
        self._restore(ps, backup)
        return gp

    def _lr(self) -> float:
        return float(self.param_groups[0]["lr"])

    # ---- protocol --------------------------------------------------------------------------------------------
    def _direction(self, closure: Closure) -> Tensor:
        return self._eval(closure)

    def _after_base_step(self, ps: list[Tensor]) -> None:
        """Hook for terms applied after the AdamW step (WSAM's decoupled sharpness)."""

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Tensor:  # type: ignore[override]
        if closure is None:
            raise ValueError(f"{type(self).__name__}.step needs a closure that clears the gradients, runs forward + "
                             "backward on the batch and returns the loss")
        loss = self._direction(closure)
        ps, grads = self._active()
        if self.grad_clip is not None and ps:
            norm = global_norm(grads)
            coef = torch.clamp(self.grad_clip / (norm + 1e-6), max=1.0)
            torch._foreach_mul_(grads, coef)
        self.base.step()
        self._after_base_step(ps)
        self.steps += 1
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    # ---- state -----------------------------------------------------------------------------------------------
    def _scalars(self) -> dict[str, Any]:
        out = {"grad_evals": self.grad_evals, "forward_evals": self.forward_evals, "steps": self.steps,
               "initial_lr": self.initial_lr}
        if self._gen is not None:
            out["rng_state"] = self._gen.get_state()
        return out

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        index = {id(p): i for i, p in enumerate(self._params())}
        variant = {index[id(p)]: {k: (v.clone() if isinstance(v, Tensor) else v) for k, v in s.items()}
                   for p, s in self.state.items() if s and id(p) in index}
        return {"base": self.base.state_dict(), "variant": variant, "scalars": self._scalars(),
                "type": type(self).__name__}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        if state_dict.get("type") != type(self).__name__:
            raise ValueError(f"state_dict is from {state_dict.get('type')}, cannot load into {type(self).__name__}")
        self.base.load_state_dict(state_dict["base"])
        self.param_groups = self.base.param_groups
        params = self._params()
        self.state.clear()
        for i, s in state_dict["variant"].items():
            p = params[int(i)]
            self.state[p] = {k: (v.to(p.device).clone() if isinstance(v, Tensor) else v) for k, v in s.items()}
        for k, v in state_dict["scalars"].items():
            if k == "rng_state":
                if self._gen is None:
                    self._gen = torch.Generator()
                self._gen.set_state(v)
            else:
                setattr(self, k, v)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparameters)
        return f"{type(self).__name__}(lr={self._lr()}, {hp})" if hp else f"{type(self).__name__}(lr={self._lr()})"


class AdamW(BaseOptimizer):
    """AdamW (Loshchilov & Hutter, ICLR 2019) behind the protocol: one gradient evaluation, then the torch AdamW step.

    ``w <- w - lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w)`` with Adam's bias-corrected moments.
    """

    passes = 1
    family = "baseline"
