"""The fused CPU GRU (models/fused_gru.py) against torch.nn.GRU: outputs and every gradient, as a reference test."""

from __future__ import annotations

import pytest
import torch

from quantsam.models.fused_gru import fused_gru_last
from quantsam.models.gru import GRUFactor, reference_gru


def _grads(model: GRUFactor, x: torch.Tensor, impl: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.fused = impl == "fused"
    xx = x.detach().clone().requires_grad_(True)
    y = model(xx)
    # a loss that weights every name differently, so every row's gradient path is checked
    loss = (y * torch.linspace(-1, 2, len(y), dtype=y.dtype)).sum() + (y ** 2).sum()
    grads = torch.autograd.grad(loss, [xx, *model.parameters()])
    return y.detach(), list(grads)


@pytest.mark.parametrize(("n", "length", "f", "h", "layers"),
                         [(37, 30, 6, 64, 2), (5, 1, 6, 8, 2), (1, 7, 3, 5, 1), (11, 9, 4, 6, 3)])
def test_fused_gru_equals_torch_gru_float64(n, length, f, h, layers):
    torch.manual_seed(n + length)
    model = GRUFactor(f, h, layers).double()
    x = torch.randn(n, length, f, dtype=torch.float64)
    y_ref, g_ref = _grads(model, x, "torch")
    y, g = _grads(model, x, "fused")
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    names = ["input", *(k for k, _ in model.named_parameters())]
    for name, a, b in zip(names, g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=lambda m, name=name: f"{name}: {m}")


def test_fused_gru_float32_within_float_tolerance_on_the_study_shape():
    torch.manual_seed(0)
    model = GRUFactor()
    x = torch.randn(500, 30, 6)
    y_ref, g_ref = _grads(model, x, "torch")
    y, g = _grads(model, x, "fused")
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fused_path_is_taken_only_where_it_applies():
    model = GRUFactor(6, 8, 2)
    x = torch.randn(4, 5, 6)
    assert model._fused_applies(x)
    with torch.no_grad():
        assert not model._fused_applies(x)  # no-grad forwards use nn.GRU's native kernel
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not model._fused_applies(x)
    assert not GRUFactor(6, 8, 2, dropout=0.1)._fused_applies(x)  # dropout while training
    assert not GRUFactor(6, 8, 2, fused=False)._fused_applies(x)


def test_two_graphs_alive_at_once_and_a_second_backward_refused():
    """Buffers are reused between forwards: two live graphs must not share them; a retained graph is refused."""
    torch.manual_seed(1)
    model = GRUFactor(6, 8, 2).double()
    xa, xb = torch.randn(6, 5, 6, dtype=torch.float64), torch.randn(6, 5, 6, dtype=torch.float64)
    ya, yb = model(xa), model(xb)  # both graphs alive
    ga = torch.autograd.grad(ya.sum(), list(model.parameters()))
    gb = torch.autograd.grad(yb.sum(), list(model.parameters()), retain_graph=True)
    for x, g in ((xa, ga), (xb, gb)):
        with reference_gru(model):
            ref = torch.autograd.grad(model(x).sum(), list(model.parameters()))
        for a, b in zip(g, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    with pytest.raises(RuntimeError, match="once per forward"):
        torch.autograd.grad(yb.sum(), list(model.parameters()))


def test_reference_gru_gives_second_derivatives():
    torch.manual_seed(2)
    model = GRUFactor(3, 4, 2).double()
    x = torch.randn(5, 4, 3, dtype=torch.float64)
    params = list(model.parameters())
    with reference_gru(model):
        g = torch.autograd.grad(model(x).pow(2).sum(), params, create_graph=True)
        hv = torch.autograd.grad(sum(gi.sum() for gi in g), params)
    assert model.fused
    assert all(torch.isfinite(h).all() for h in hv)


def test_fused_gru_gives_the_same_bits_on_one_and_two_threads():
    """The long weight-gradient reductions must not depend on the thread count (trainer.workers / num_threads change
    no number). Only the GRU is checked: a multi-threaded Linear head may round differently on its own."""
    torch.manual_seed(3)
    gru = torch.nn.GRU(6, 64, 2, batch_first=True)
    x = torch.randn(300, 30, 6)
    before = torch.get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            h = fused_gru_last(x, gru)
            out[n] = (h.detach(), torch.autograd.grad((h * h.detach().sin()).sum(), list(gru.parameters())))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out[1][0], out[2][0])
    assert all(torch.equal(a, b) for a, b in zip(out[1][1], out[2][1], strict=True))
    assert torch.get_num_threads() == before
