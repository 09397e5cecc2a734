"""A multi-layer GRU forward and a hand-written backward through time for the CPU (issue 30).

Why by hand: PyTorch's CPU ``nn.GRU`` has no oneDNN path (only ``nn.LSTM`` has one). It runs ~12 ATen ops per time
step under autograd, and its backward computes the recurrent weight gradient as one small ``[3H, N] x [N, H]``
matmul *per step*. This module computes the same function (PyTorch's gate equations, its parameter layout and names)
with

* the input projection of every time step as one ``[L*N, F] x [F, 3H]`` matmul (as ``nn.GRU`` does too);
* per step only what the recurrence needs: one ``[N, H] x [H, 3H]`` matmul and five in-place/``out=`` element-wise
  ops (the update ``h' = n + z * (h - n)`` is one ``torch.lerp``), no autograd bookkeeping;
* the backward's local derivatives that do not depend on the incoming gradient precomputed over all steps at once
  (three large element-wise passes instead of per-step ones);
* the weight gradients of all steps as two large matmuls (``dW_hh = dG_h^T H_prev``, ``dW_ih = dG_i^T X`` over the
  ``L*N`` rows), so the per-step backward is one ``[N, 3H] x [3H, H]`` matmul and five element-wise ops.

Gate equations (PyTorch ``nn.GRU`` docs; Cho et al. 2014 with the reset gate applied after the matmul):
``r = s(W_ir x + b_ir + W_hr h + b_hr)``, ``z = s(W_iz x + b_iz + W_hz h + b_hz)``,
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``; gates stacked ``r, z, n``.

Backward (``g`` = dLoss/dh_t, incl. the carry from step t+1; ``a = W_hn h + b_hn``):
``dn_pre = g (1-z)(1-n^2)``, ``dz_pre = g (h-n) z(1-z)``, ``dr_pre = dn_pre a r(1-r)``,
``dG_h = [dr_pre, dz_pre, dn_pre r]``, ``dG_i = [dr_pre, dz_pre, dn_pre]``, ``dh_{t-1} = g z + dG_h W_hh``.

It is first-order only (``once_differentiable``): Hessian-vector products (``report.landscape``) use ``nn.GRU``
through :func:`quantsam.models.gru.reference_gru`. Checked against ``torch.nn.GRU`` (outputs and every gradient) in
``tests/unit/test_fused_gru.py``; speed in ``scripts/bench/real_fit.py --gru``.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

_sigmoid_bwd = torch.ops.aten.sigmoid_backward.grad_input  # grad * y * (1 - y), written into grad_input
_tanh_bwd = torch.ops.aten.tanh_backward.grad_input        # grad * (1 - y^2)


class _Arena(threading.local):
    """Reused flat buffers for the per-sequence tensors (``[L, N, *]``, megabytes each).

    Measured (``scripts/bench/real_fit.py --gru``): on these machines a fresh multi-megabyte tensor costs more to
    touch the first time (page faults) than the arithmetic done in it, and the allocator returns such blocks to the
    OS on free; so the buffers of one forward/backward are taken here and given back when the backward (or a
    no-grad forward) is done. A graph dropped without a backward simply lets its buffers be garbage-collected.
    """

    MAX_FREE = 48

    def __init__(self):
        self.free: list[Tensor] = []

    def take(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        n = 1
        for s in shape:
            n *= s
        for k, buf in enumerate(self.free):
            if buf.dtype == like.dtype and buf.device == like.device and n <= buf.numel() <= 2 * n + 4096:
                return self.free.pop(k)[:n].view(shape)
        return like.new_empty(shape)

    def give(self, *tensors: Tensor) -> None:
        for t in tensors:
            base = t._base if t._base is not None else t
            if len(self.free) < self.MAX_FREE and base.is_contiguous():
                self.free.append(base.view(-1))


_ARENA = _Arena()


@contextmanager
def _one_thread():
    """Run the block on one intra-op thread. The weight gradients reduce over ``L * N`` rows in one GEMM, and a
    multi-threaded BLAS splits such a long reduction between threads, so the float rounding would depend on the
    thread count; ``trainer.workers`` and ``trainer.num_threads`` change no number (tests/integration/test_train.py),
    so the fused GRU computes as one thread does whatever the process has (the study runs 1 thread per process)."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _layer_forward(x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor):
    """One layer over a time-major ``[L, N, F]`` input: the hidden states ``[L + 1, N, H]`` (``h_0 = 0`` first) and
    the per-step gate values the backward needs (pre-activation ``W_hn h + b_hn`` inside ``gh``)."""
    L, N, F = x.shape
    H = w_hh.shape[1]
    gi = torch.addmm(b_ih, x.reshape(L * N, F), w_ih.t(), out=_ARENA.take((L * N, 3 * H), x)).view(L, N, 3 * H)
    hs = _ARENA.take((L + 1, N, H), x)
    hs[0].zero_()
    gh = _ARENA.take((L, N, 3 * H), x)  # W_hh h + b_hh of every step
    rz = _ARENA.take((L, N, 2 * H), x)  # r, z
    nn_ = _ARENA.take((L, N, H), x)     # n
    w_hh_t = w_hh.t()
    for t in range(L):
        torch.addmm(b_hh, hs[t], w_hh_t, out=gh[t])
        torch.add(gi[t, :, :2 * H], gh[t, :, :2 * H], out=rz[t]).sigmoid_()
        torch.addcmul(gi[t, :, 2 * H:], rz[t, :, :H], gh[t, :, 2 * H:], out=nn_[t]).tanh_()
        torch.lerp(nn_[t], hs[t], rz[t, :, H:], out=hs[t + 1])
    _ARENA.give(gi)
    return hs, (x, hs, gh, rz, nn_)


def _layer_backward(saved, w_ih: Tensor, w_hh: Tensor, d_out: Tensor, full: bool, need_dx: bool):
    """Gradients of one layer: ``d_out`` is dLoss/dh over ``[L, N, H]`` (``full``) or of the last step ``[N, H]``."""
    x, hs, gh, rz, nn_ = saved
    L, N, F = x.shape
    H = w_hh.shape[1]
    dgh = _ARENA.take((L, N, 3 * H), x)  # d(W_hh h + b_hh) per step; its r, z parts are those of d(W_ih x + b_ih)
    dn_pre = _ARENA.take((L, N, H), x)   # d(n_pre): the n part of d(W_ih x + b_ih)
    g = d_out[L - 1].clone() if full else d_out.clone()
    for t in range(L - 1, -1, -1):
        if full and t < L - 1:
            g.add_(d_out[t])
        r, z, n = rz[t, :, :H], rz[t, :, H:], nn_[t]
        gz = g * z                                                        # carried straight to h_{t-1}
        _tanh_bwd(g - gz, n, grad_input=dn_pre[t])                        # g (1 - z) (1 - n^2)
        _sigmoid_bwd(g * (hs[t] - n), z, grad_input=dgh[t, :, H:2 * H])   # g (h - n) z (1 - z)
        _sigmoid_bwd(dn_pre[t] * gh[t, :, 2 * H:], r, grad_input=dgh[t, :, :H])
        torch.mul(dn_pre[t], r, out=dgh[t, :, 2 * H:])
        if t:  # h_0 is the constant zero state: no gradient to carry past the first step
            g = torch.addmm(gz, dgh[t], w_hh)
    dgh2, dn2 = dgh.view(L * N, 3 * H), dn_pre.view(L * N, H)
    x2, dgi_rz = x.reshape(L * N, F), dgh2[:, :2 * H]  # d(W_ih x + b_ih) = [dgh_r, dgh_z, dn_pre]: no copy made
    d_w_hh = dgh2.t() @ hs[:-1].reshape(L * N, H)
    d_w_ih = torch.cat([dgi_rz.t() @ x2, dn2.t() @ x2])
    d_b_hh = dgh2.sum(0)
    d_b_ih = torch.cat([d_b_hh[:2 * H], dn2.sum(0)])
    dx = None
    if need_dx:
        dx = torch.addmm(dn2 @ w_ih[2 * H:], dgi_rz, w_ih[:2 * H], out=_ARENA.take((L * N, F), x)).view(L, N, F)
    _ARENA.give(dgh, dn_pre, hs, gh, rz, nn_)
    return dx, d_w_ih, d_w_hh, d_b_ih, d_b_hh


class _FusedGRULast(torch.autograd.Function):
    """``[N, L, F]`` batch-first input and each layer's ``(w_ih, w_hh, b_ih, b_hh)`` -> the top layer's last hidden
    state ``[N, H]`` (what :class:`~quantsam.models.gru.GRUFactor` reads)."""

    @staticmethod
    def forward(ctx, keep: bool, x: Tensor, *weights: Tensor) -> Tensor:
        h = x.transpose(0, 1).contiguous()  # time-major: each step's rows are one contiguous block
        saved = []
        with _one_thread():
            for k in range(0, len(weights), 4):
                hs, s = _layer_forward(h, *weights[k:k + 4])
                saved.append(s)
                h = hs[1:]
        out = h[-1].clone()
        if keep:
            ctx.layers = saved
            ctx.x_requires_grad = x.requires_grad
            ctx.save_for_backward(*weights)
        else:  # nothing will read the buffers again
            for _, hs, gh, rz, nn_ in saved:
                _ARENA.give(hs, gh, rz, nn_)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_last: Tensor):
        if getattr(ctx, "layers", None) is None:
            raise RuntimeError("the fused GRU's backward runs once per forward (no retain_graph): use "
                               "model.gru_impl=torch (GRUFactor(fused=False), or quantsam.models.gru.reference_gru) for repeated "
                               "backwards")
        weights = ctx.saved_tensors
        grads: list[Tensor | None] = [None] * len(weights)
        d, full = d_last.contiguous(), False
        dx = None
        with _one_thread():
            for layer in range(len(ctx.layers) - 1, -1, -1):
                w_ih, w_hh = weights[4 * layer], weights[4 * layer + 1]
                need_dx = layer > 0 or ctx.x_requires_grad
                dx, *gw = _layer_backward(ctx.layers[layer], w_ih, w_hh, d, full, need_dx)
                grads[4 * layer:4 * layer + 4] = gw
                if full:
                    _ARENA.give(d)
                d, full = dx, True
        ctx.layers = None
        return None, (dx.transpose(0, 1) if dx is not None else None), *grads


def fused_gru_last(x: Tensor, gru: torch.nn.GRU) -> Tensor:
    """The last time step of ``gru(x)[0]`` for the top layer (``batch_first`` ``[N, L, F]`` input, no initial state,
    unidirectional, no dropout), computed by the fused forward and hand-written backward of this module."""
    weights = []
    for k in range(gru.num_layers):
        weights += [getattr(gru, f"weight_ih_l{k}"), getattr(gru, f"weight_hh_l{k}"),
                    getattr(gru, f"bias_ih_l{k}"), getattr(gru, f"bias_hh_l{k}")]
    # inside Function.forward grad mode is off: whether the backward's tensors are needed is decided here
    keep = torch.is_grad_enabled() and (x.requires_grad or any(w.requires_grad for w in weights))
    return _FusedGRULast.apply(keep, x, *weights)
