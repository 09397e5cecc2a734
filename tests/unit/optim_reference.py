"""Independent float64 references of the seven optimizers, for the tests only.

Written as plain per-tensor Python loops over ``dict[name, tensor]`` with a hand-written AdamW, sharing no code with
``quantsam.optim``. ``grad_fn(params) -> (loss, grads)`` evaluates the loss and its gradient at the given weights.
"""

from __future__ import annotations

import math

import torch


class RefAdamW:
    """torch.optim.AdamW's update, written out: decoupled decay, bias-corrected moments."""

    def __init__(self, lr=1e-3, weight_decay=1e-2, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.wd, self.b1, self.b2, self.eps = lr, weight_decay, betas[0], betas[1], eps
        self.m, self.v, self.t = {}, {}, {}

    def update(self, params, direction):
        for k, d in direction.items():
            if d is None:
                continue
            self.t[k] = self.t.get(k, 0) + 1
            t = self.t[k]
            m = self.m.get(k, torch.zeros_like(d)) * self.b1 + (1 - self.b1) * d
            v = self.v.get(k, torch.zeros_like(d)) * self.b2 + (1 - self.b2) * d * d
            self.m[k], self.v[k] = m, v
            params[k] = params[k] * (1 - self.lr * self.wd)
            denom = v.sqrt() / math.sqrt(1 - self.b2**t) + self.eps
            params[k] = params[k] - (self.lr / (1 - self.b1**t)) * m / denom


def norm(d):
    return math.sqrt(sum(float((x * x).sum()) for x in d.values() if x is not None))


def add(params, e, scale=1.0):
    return {k: params[k] + scale * e[k] if e.get(k) is not None else params[k] for k in params}


def clip(grads, max_norm):
    if max_norm is None:
        return grads
    c = min(1.0, max_norm / (norm(grads) + 1e-6))
    return {k: (g * c if g is not None else None) for k, g in grads.items()}


class Ref:
    """Reference optimizer: ``step(params, grad_fn) -> (new_params, clean_loss)``."""

    def __init__(self, name, lr=1e-3, weight_decay=1e-2, grad_clip=None, weights=None, **hp):
        self.name, self.hp = name, hp
        self.adam = RefAdamW(lr=lr, weight_decay=weight_decay)
        self.grad_clip = grad_clip
        self.weights = weights  # names of tensors ASAM scales
        self.ema = None
        self.lr0 = lr
        self.evals = 0

    def _g(self, grad_fn, params):
        self.evals += 1
        return grad_fn(params)

    def step(self, params, grad_fn):
        hp, lr = self.hp, self.adam.lr
        loss, g = self._g(grad_fn, params)
        post = None
        if self.name == "adamw":
            d = g
        elif self.name == "sam":
            n = norm(g)
            _, d = self._g(grad_fn, add(params, {k: hp["rho"] * x / (n + 1e-12) for k, x in g.items()}))
        elif self.name == "asam":
            tw = {k: (params[k].abs() + hp["eta"]) if k in self.weights else None for k in params}
            tg = {k: g[k] * tw[k] if tw[k] is not None else g[k] for k in g}
            n = norm(tg) + 1e-16
            e = {k: hp["rho"] * (tg[k] * tw[k] if tw[k] is not None else tg[k]) / n for k in g}
            _, d = self._g(grad_fn, add(params, e))
        elif self.name == "gsam":
            rho = hp["rho"]
            if hp.get("rho_max") is not None:
                rho = hp["rho_min"] + (hp["rho_max"] - hp["rho_min"]) * lr / self.lr0
            n = norm(g)
            _, gp = self._g(grad_fn, add(params, {k: rho * x / (n + 1e-12) for k, x in g.items()}))
            np_ = norm(gp)
            inner = sum(float((g[k] * gp[k]).sum()) for k in g)
            cos = inner / (np_ * n + 1e-12)
            d = {k: gp[k] - hp["alpha"] * (g[k] - cos * n * gp[k] / (np_ + 1e-12)) for k in g}
        elif self.name == "gam":
            n0 = norm(g)
            w1 = add(params, {k: hp["grad_rho"] * x / (n0 + 1e-12) for k, x in g.items()})
            _, g1 = self._g(grad_fn, w1)
            diff = {k: g1[k] - g[k] for k in g}
            nd = norm(diff)
            w2 = add(params, {k: hp["grad_norm_rho"] * x / (nd + 1e-12) for k, x in diff.items()})
            _, g2 = self._g(grad_fn, w2)
            n2 = norm(g2)
            w3 = add(w2, {k: hp["grad_rho"] * x / (n2 + 1e-12) for k, x in g2.items()})
            _, g3 = self._g(grad_fn, w3)
            b0, b1, gam = hp["grad_beta_0"], hp["grad_beta_1"], hp["grad_gamma"]
            pro = {k: g[k] + abs(1 - b0) * g2[k] for k in g}
            d = {k: b1 * g1[k] + (1 - b1) * g3[k] for k in g}
            ndd, npro = norm(d), norm(pro)
            cos = sum(float((pro[k] * d[k]).sum()) for k in g) / (ndd * npro + 1e-12)
            d = {k: d[k] - gam * (pro[k] - cos * npro * d[k] / (ndd + 1e-12)) for k in g}
        elif self.name == "fsam":
            if self.ema is None:
                self.ema = {k: x.clone() for k, x in g.items()}
                pert = g
            else:
                pert = {k: g[k] - hp["sigma"] * self.ema[k] for k in g}
                self.ema = {k: hp["lmbda"] * self.ema[k] + (1 - hp["lmbda"]) * g[k] for k in g}
            n = norm(pert)
            _, d = self._g(grad_fn, add(params, {k: hp["rho"] * x / (n + 1e-12) for k, x in pert.items()}))
        elif self.name == "wsam":
            n = norm(g)
            e = {k: hp["rho"] * x / (n + 1e-12) for k, x in g.items()}
            gc = clip(g, hp.get("max_norm"))
            _, gp = self._g(grad_fn, add(params, e))
            gp = clip(gp, hp.get("max_norm"))
            alpha = hp["gamma"] / (1 - hp["gamma"])
            if hp.get("decouple", True):
                d = gc
                post = {k: gp[k] - gc[k] for k in g}
            else:
                d = {k: alpha * gp[k] + (1 - alpha) * gc[k] for k in g}
        else:
            raise KeyError(self.name)
        d = clip(d, self.grad_clip)
        params = dict(params)
        self.adam.update(params, d)
        if post is not None:
            alpha = hp["gamma"] / (1 - hp["gamma"])
            params = {k: params[k] - lr * alpha * post[k] for k in params}
        return params, loss
