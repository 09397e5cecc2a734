"""The seven optimizers against independent float64 references, hand-derived first steps, and the protocol (the
efficiency variants and CSAM: test_optim_efficient.py)."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch.func import functional_call

from quantsam.optim import build_optimizer, valid_kwargs

from .optim_reference import Ref

DEFAULTS = {
    "adamw": {},
    "sam": {"rho": 0.05},
    "asam": {"rho": 0.5, "eta": 0.01},
    "gsam": {"rho": 0.05, "alpha": 0.1},
    "gam": {"grad_rho": 0.02, "grad_norm_rho": 0.2, "grad_beta_0": 0.5, "grad_beta_1": 0.6, "grad_gamma": 0.03},
    "fsam": {"rho": 0.05, "sigma": 1.0, "lmbda": 0.9},
    "wsam": {"rho": 0.05, "gamma": 0.9, "decouple": True, "max_norm": None},
}
SEVEN = list(DEFAULTS)
PASSES = {"adamw": 1, "sam": 2, "asam": 2, "gsam": 2, "gam": 4, "fsam": 2, "wsam": 2}
EXTRA_CASES = [
    ("gsam", {"rho": 0.05, "alpha": 0.3, "rho_max": 0.08, "rho_min": 0.02}),
    ("wsam", {"rho": 0.05, "gamma": 0.8, "decouple": False, "max_norm": None}),
    ("wsam", {"rho": 0.05, "gamma": 0.9, "decouple": True, "max_norm": 0.05}),
]


class TinyGRU(torch.nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.gru = torch.nn.GRU(3, hidden, 2, batch_first=True)
        self.head = torch.nn.Linear(hidden, 1)
        self.unused = torch.nn.Parameter(torch.ones(4))

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1]).squeeze(-1)


def make_problem(dtype=torch.float64, seed=0, device="cpu"):
    torch.manual_seed(seed)
    model = TinyGRU().to(dtype=dtype, device=device)
    x = torch.randn(64, 7, 3, dtype=dtype, device=device)
    y = torch.randn(64, dtype=dtype, device=device)
    return model, x, y


def loss_of(pred, y):
    # negative Pearson IC, the study's loss
    pc, yc = pred - pred.mean(), y - y.mean()
    return -(pc * yc).sum() / (pc.norm() * yc.norm() + 1e-12)


def make_closure(model, opt, x, y, batches=None):
    state = {"k": 0}

    def closure():
        opt.zero_grad()
        xb, yb = (x, y) if batches is None else batches[state["k"] % len(batches)]
        loss = loss_of(model(xb), yb)
        loss.backward()
        return loss

    return closure, state


def run_impl(name, hp, steps=25, lr=1e-3, schedule=None, grad_clip=None, seed=0):
    model, x, y = make_problem(seed=seed)
    batches = [(x[i::4], y[i::4]) for i in range(4)]
    opt = build_optimizer(name, model.named_parameters(), lr=lr, weight_decay=1e-2, grad_clip=grad_clip, **hp)
    closure, st = make_closure(model, opt, x, y, batches)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5) if schedule else None
    losses = []
    for k in range(steps):
        st["k"] = k
        losses.append(float(opt.step(closure)))
        if sched:
            sched.step()
    return {n: p.detach().clone() for n, p in model.named_parameters()}, losses, opt


def run_ref(name, hp, steps=25, lr=1e-3, schedule=None, grad_clip=None, seed=0):
    model, x, y = make_problem(seed=seed)
    batches = [(x[i::4], y[i::4]) for i in range(4)]
    used = [n for n, _ in model.named_parameters() if n != "unused"]
    params = {n: p.detach().clone() for n, p in model.named_parameters() if n in used}
    weights = {n for n in used if "weight" in n}
    ref = Ref(name, lr=lr, weight_decay=1e-2, grad_clip=grad_clip, weights=weights, **hp)
    losses = []
    for k in range(steps):
        xb, yb = batches[k % 4]

        def grad_fn(pr, xb=xb, yb=yb):
            leaves = {n: t.detach().requires_grad_(True) for n, t in pr.items()}
            loss = loss_of(functional_call(model, leaves, (xb,)), yb)
            gs = torch.autograd.grad(loss, list(leaves.values()))
            return float(loss.detach()), dict(zip(leaves, gs, strict=True))

        if schedule:
            ref.adam.lr = lr * 0.5 ** (k // 5)
        params, loss = ref.step(params, grad_fn)
        losses.append(loss)
    return params, losses, ref


def max_rel_diff(a, b):
    return max(float((a[k] - b[k]).abs().max() / (b[k].abs().max() + 1e-12)) for k in b)


CASES = [(n, DEFAULTS[n]) for n in SEVEN] + EXTRA_CASES


@pytest.mark.parametrize("name,hp", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectory_matches_float64_reference(name, hp):
    w_impl, l_impl, opt = run_impl(name, hp, schedule=True)
    w_ref, l_ref, ref = run_ref(name, hp, schedule=True)
    # float64 roundoff amplified by Adam's normalisation stays below ~3e-9 for most cases (1.7e-8 for wsam-8 with
    # torch 2.13's CPU kernels); a 1% change of any hyperparameter moves the weights by > 1e-5 (test below), so 1e-7
    # still separates right from wrong by two orders of magnitude
    assert max_rel_diff(w_impl, w_ref) < 1e-7
    assert max(abs(a - b) for a, b in zip(l_impl, l_ref, strict=True)) < 1e-8
    assert opt.grad_evals == ref.evals == 25 * PASSES[name]
    # the unused parameter was never touched
    assert torch.equal(w_impl["unused"], torch.ones(4, dtype=torch.float64))


@pytest.mark.parametrize("name,key", [("sam", "rho"), ("asam", "rho"), ("gsam", "rho"), ("gsam", "alpha"),
                                      ("gam", "grad_rho"), ("gam", "grad_gamma"), ("fsam", "rho"), ("fsam", "lmbda"),
                                      ("wsam", "rho"), ("wsam", "gamma")])
def test_reference_comparison_detects_a_one_percent_change(name, key):
    """Mutation sense: a hyperparameter off by 1% moves the trajectory far outside the comparison tolerance."""
    hp = dict(DEFAULTS[name])
    w_impl, _, _ = run_impl(name, hp)
    hp[key] = hp[key] * 1.01
    w_ref, _, _ = run_ref(name, hp)
    assert max_rel_diff(w_impl, w_ref) > 1e-6


# ---- hand-derived first steps on L(w) = 0.5 * (a1 w1^2 + a2 w2^2), w0 = (1, 1), a = (1, 4) -------------------------
A = torch.tensor([1.0, 4.0], dtype=torch.float64)


def quad_direction(name, **hp):
    """Run one step from w0 and return (direction handed to AdamW, new weight)."""
    w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = build_optimizer(name, [("weight", w)], lr=0.1, weight_decay=0.0, **hp)

    def closure():
        opt.zero_grad()
        loss = 0.5 * (A * w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    return w.grad.detach().clone(), w.detach().clone(), float(loss), opt


def test_hand_derived_sam():
    rho = 0.05
    d, _, loss, _ = quad_direction("sam", rho=rho)
    s = math.sqrt(17)  # ||g0|| with g0 = (1, 4)
    expect = torch.tensor([1 * (1 + rho * 1 / s), 4 * (1 + rho * 4 / s)], dtype=torch.float64)
    assert torch.allclose(d, expect, rtol=1e-12)
    assert loss == pytest.approx(0.5 * (1 + 4))  # the clean loss is returned


def test_hand_derived_asam():
    rho, eta = 0.5, 0.01
    d, _, _, _ = quad_direction("asam", rho=rho, eta=eta)
    # T_w = |w| + eta = 1 + eta on both coordinates, so e = rho (1 + eta)^2 g / ((1 + eta) ||g||) = rho (1+eta) g/||g||
    e = rho * (1 + eta) * torch.tensor([1.0, 4.0], dtype=torch.float64) / math.sqrt(17)
    assert torch.allclose(d, A * (1 + e), rtol=1e-12)


def test_hand_derived_gsam():
    rho, alpha = 0.05, 0.1
    d, _, _, _ = quad_direction("gsam", rho=rho, alpha=alpha)
    g = torch.tensor([1.0, 4.0], dtype=torch.float64)
    gp = A * (1 + rho * g / math.sqrt(17))
    # orthogonal part of g w.r.t. gp, computed by projection: g - (g.gp / |gp|^2) gp
    g_orth = g - (g @ gp) / (gp @ gp) * gp
    assert torch.allclose(d, gp - alpha * g_orth, rtol=1e-10)


def test_hand_derived_wsam_decoupled_and_coupled():
    rho, gamma, lr = 0.05, 0.9, 0.1
    g = torch.tensor([1.0, 4.0], dtype=torch.float64)
    gp = A * (1 + rho * g / math.sqrt(17))
    alpha = gamma / (1 - gamma)
    d, w, _, _ = quad_direction("wsam", rho=rho, gamma=gamma, decouple=True)
    assert torch.allclose(d, g, rtol=1e-12)  # AdamW sees the clean gradient
    adam_step = lr * torch.sign(g) * g.abs() / (g.abs() + 1e-8)  # Adam's first step: lr * m_hat / (sqrt(v_hat)+eps)
    assert torch.allclose(w, 1 - adam_step - lr * alpha * (gp - g), rtol=1e-10)
    d2, _, _, _ = quad_direction("wsam", rho=rho, gamma=gamma, decouple=False)
    assert torch.allclose(d2, alpha * gp + (1 - alpha) * g, rtol=1e-12)


def test_hand_derived_fsam_two_steps():
    rho, sigma, lmbda = 0.05, 1.0, 0.9
    w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = build_optimizer("fsam", [w], lr=0.1, weight_decay=0.0, rho=rho, sigma=sigma, lmbda=lmbda)

    def closure():
        opt.zero_grad()
        loss = 0.5 * (A * w * w).sum()
        loss.backward()
        return loss

    g0 = A * w.detach().clone()
    opt.step(closure)
    assert torch.allclose(w.grad, A * (1 + rho * g0 / g0.norm()), rtol=1e-12)  # first step: plain SAM
    w1 = w.detach().clone()
    g1 = A * w1
    opt.step(closure)
    dirn = g1 - sigma * g0  # subtracts the EMA *before* its update (m_0 = g0)
    assert torch.allclose(w.grad, A * (w1 + rho * dirn / dirn.norm()), rtol=1e-10)
    assert torch.allclose(opt.state[w]["momentum"], lmbda * g0 + (1 - lmbda) * g1, rtol=1e-12)


def test_hand_derived_gam():
    hp = DEFAULTS["gam"]
    d, _, _, opt = quad_direction("gam", **hp)
    w0 = torch.ones(2, dtype=torch.float64)
    g0 = A * w0
    g1 = A * (w0 + hp["grad_rho"] * g0 / g0.norm())
    w2 = w0 + hp["grad_norm_rho"] * (g1 - g0) / (g1 - g0).norm()
    g2 = A * w2
    g3 = A * (w2 + hp["grad_rho"] * g2 / g2.norm())
    pro = g0 + (1 - hp["grad_beta_0"]) * g2
    base = hp["grad_beta_1"] * g1 + (1 - hp["grad_beta_1"]) * g3
    pro_orth = pro - (pro @ base) / (base @ base) * base
    assert torch.allclose(d, base - hp["grad_gamma"] * pro_orth, rtol=1e-10)
    assert opt.grad_evals == 4


# ---- protocol ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SEVEN)
def test_closure_calls_counts_and_grad_enabled(name):
    model, x, y = make_problem()
    opt = build_optimizer(name, model.parameters(), lr=1e-3, **DEFAULTS[name])
    calls = {"n": 0, "grad": []}

    def closure():
        calls["n"] += 1
        calls["grad"].append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = loss_of(model(x), y)
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    assert calls["n"] == 3 * PASSES[name] == opt.grad_evals
    assert all(calls["grad"])


@pytest.mark.parametrize("name", SEVEN)
def test_stale_gradients_are_never_used(name):
    """Garbage in .grad before step, and a closure that forgets to zero the grads: same result as a clean run."""
    hp = DEFAULTS[name]
    w_clean, _, _ = run_impl(name, hp, steps=3)
    model, x, y = make_problem()
    batches = [(x[i::4], y[i::4]) for i in range(4)]
    opt = build_optimizer(name, model.named_parameters(), lr=1e-3, weight_decay=1e-2, **hp)
    for k in range(3):
        for p in model.parameters():
            p.grad = torch.full_like(p, 1e3)

        def closure(k=k):
            xb, yb = batches[k % 4]
            loss = loss_of(model(xb), yb)
            loss.backward()  # no zero_grad: would accumulate onto garbage if step did not clear
            return loss

        opt.step(closure)
    w = {n: p.detach() for n, p in model.named_parameters()}
    assert max_rel_diff(w, w_clean) == 0.0


@pytest.mark.parametrize("name,hp", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_state_dict_round_trip_is_bit_identical(name, hp):
    model, x, y = make_problem(dtype=torch.float32)
    batches = [(x[i::4], y[i::4]) for i in range(4)]

    def train(model, opt, sched, ks):
        for k in ks:
            xb, yb = batches[k % 4]

            def closure(xb=xb, yb=yb):
                opt.zero_grad()
                loss = loss_of(model(xb), yb)
                loss.backward()
                return loss

            opt.step(closure)
            sched.step()

    opt = build_optimizer(name, model.named_parameters(), lr=1e-2, **hp)
    sched = torch.optim.lr_scheduler.StepLR(opt, 3, 0.7)
    train(model, opt, sched, range(6))
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    train(model, opt, sched, range(6, 14))
    expect = {n: p.detach().clone() for n, p in model.named_parameters()}

    model2, _, _ = make_problem(dtype=torch.float32, seed=123)  # different init, overwritten by the checkpoint
    buf.seek(0)
    ck = torch.load(buf, weights_only=False)
    model2.load_state_dict(ck["model"])
    opt2 = build_optimizer(name, model2.named_parameters(), lr=1e-2, **hp)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 3, 0.7)
    opt2.load_state_dict(ck["opt"])
    sched2.load_state_dict(ck["sched"])
    train(model2, opt2, sched2, range(6, 14))
    got = {n: p.detach() for n, p in model2.named_parameters()}
    assert all(torch.equal(got[k], expect[k]) for k in expect)
    assert opt2.grad_evals == opt.grad_evals


def test_lr_change_reaches_every_term():
    model, x, y = make_problem()
    opt = build_optimizer("gsam", model.parameters(), lr=0.01, rho=0.05, alpha=0.1, rho_max=0.1, rho_min=0.02)
    assert opt.rho_t() == pytest.approx(0.1)
    for g in opt.param_groups:
        g["lr"] = 0.005
    assert opt.rho_t() == pytest.approx(0.02 + 0.08 * 0.5)
    assert opt.base.param_groups[0]["lr"] == 0.005  # the base AdamW sees the same groups


@pytest.mark.parametrize("name,kwargs,match", [
    ("sam", {"rho": -0.1}, "rho"),
    ("asam", {"eta": -1}, "eta"),
    ("wsam", {"gamma": 1.0}, "gamma"),
    ("wsam", {"gamma": -0.1}, "gamma"),
    ("fsam", {"lmbda": 1.0}, "lmbda"),
    ("gam", {"grad_beta_1": 1.5}, "grad_beta_1"),
    ("gsam", {"rho_max": 0.1}, "rho_min"),
    ("adamw", {"lr": 0.0}, "lr"),
])
def test_bad_values_name_the_argument_and_range(name, kwargs, match):
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match=match):
        build_optimizer(name, [p], **kwargs)


def test_unknown_name_and_kwarg():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="valid names.*gsam"):
        build_optimizer("adam_sam", [p])
    with pytest.raises(TypeError, match="valid.*rho"):
        build_optimizer("sam", [p], radius=0.1)
    assert "grad_norm_rho" in valid_kwargs("gam")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", SEVEN)
def test_cuda_matches_cpu(name):
    hp = DEFAULTS[name]
    out = []
    for dev in ("cpu", "cuda"):
        model, x, y = make_problem(device=dev)
        opt = build_optimizer(name, model.named_parameters(), lr=1e-3, **hp)
        closure, _ = make_closure(model, opt, x, y)
        for _ in range(10):
            opt.step(closure)
        out.append({n: p.detach().cpu() for n, p in model.named_parameters()})
    assert max_rel_diff(out[1], out[0]) < 1e-8
