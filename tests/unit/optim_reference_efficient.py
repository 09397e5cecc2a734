"""Independent float64 references of LookSAM, ESAM, MESA, RST and CSAM, for the tests only.

Written from the papers' algorithms on **flattened** parameter vectors (one ``torch.cat`` of every used tensor) with a
hand-written AdamW, sharing no code with ``quantsam.optim``. A problem gives ``grad(flat, rows=None, teacher=None,
lam=0.0) -> (loss, flat_grad)``, ``sample_losses(flat) -> [n]`` and ``predict(flat) -> [n]``.
"""

from __future__ import annotations

import math

import numpy as np
import torch


class FlatAdamW:
    def __init__(self, lr=1e-3, weight_decay=1e-2, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.wd, self.b1, self.b2, self.eps = lr, weight_decay, betas[0], betas[1], eps
        self.m = self.v = None
        self.t = 0

    def update(self, w, d):
        self.t += 1
        self.m = (1 - self.b1) * d if self.m is None else self.b1 * self.m + (1 - self.b1) * d
        self.v = (1 - self.b2) * d * d if self.v is None else self.b2 * self.v + (1 - self.b2) * d * d
        w = w * (1 - self.lr * self.wd)
        mhat = self.m / (1 - self.b1 ** self.t)
        vhat = self.v / (1 - self.b2 ** self.t)
        return w - self.lr * mhat / (vhat.sqrt() + self.eps)


def unit(v, eps=1e-12):
    return v / (float(v.norm()) + eps)


class FlatRef:
    """``step(w, prob) -> (w_new, clean_loss)`` for one variant; ``prob`` is the batch's problem (see module doc)."""

    def __init__(self, name, lr=1e-3, weight_decay=1e-2, blocks=None, weight_mask=None, **hp):
        self.name, self.hp = name, hp
        self.adam = FlatAdamW(lr, weight_decay)
        self.blocks = blocks  # [(start, stop)] of each named tensor in the flat vector, in named_parameters order
        self.weight_mask = weight_mask  # 1.0 on ASAM-scaled entries, 0.0 elsewhere
        self.evals = 0
        self.t = 0
        self.g_v = None
        self.ema = None
        self.momentum = None
        self.gen = torch.Generator().manual_seed(hp["seed"]) if "seed" in hp else None

    def _grad(self, prob, w, **kw):
        self.evals += 1
        return prob.grad(w, **kw)

    def _sam_grad(self, prob, w, g, rho):
        _, gs = self._grad(prob, w + rho * unit(g))
        return gs

    def step(self, w, prob):
        hp, name = self.hp, self.name
        if name == "looksam":
            loss, g = self._grad(prob, w)
            if self.t % hp["k"] == 0:
                gs = self._sam_grad(prob, w, g, hp["rho"])
                cos = float(g @ gs) / (float(g.norm()) * float(gs.norm()) + 1e-12)
                self.g_v = gs - float(gs.norm()) * cos * unit(g)
                d = gs
            else:
                d = g + hp["alpha"] * float(g.norm()) / (float(self.g_v.norm()) + 1e-12) * self.g_v
        elif name == "rst":
            u = float(torch.rand((), generator=self.gen))
            p = hp["p"] if hp.get("p_end") is None else \
                hp["p"] + (hp["p_end"] - hp["p"]) * min(1.0, self.t / hp["p_steps"])
            loss, g = self._grad(prob, w)
            d = self._sam_grad(prob, w, g, hp["rho"]) if u < p else g
        elif name == "esam":
            draw = torch.rand(len(self.blocks), generator=self.gen) if hp["beta"] < 1 else torch.zeros(len(self.blocks))
            mask = torch.zeros_like(w)
            for (a, b), u in zip(self.blocks, draw.tolist(), strict=True):
                if u < hp["beta"]:
                    mask[a:b] = 1.0
            loss, g = self._grad(prob, w)
            g = g * mask  # only the drawn tensors' gradient is computed (the others are frozen)
            e = hp["rho"] / hp["beta"] * unit(g)
            rows = None
            if hp["gamma"] < 1:
                sharp = (prob.sample_losses(w + e) - prob.sample_losses(w)).numpy()
                n = len(sharp)
                k = min(n, max(3, math.ceil(hp["gamma"] * n)))
                if k < n:
                    rows = torch.from_numpy(np.sort(np.argsort(-sharp, kind="stable")[:k]))
            _, d = self._grad(prob, w + e, rows=rows)
        elif name == "mesa":
            if self.ema is None:
                self.ema = w.clone()
            if self.t >= hp["start_step"] and hp["lmbda"] > 0:
                teacher = prob.predict(self.ema)
                loss, d = self._grad(prob, w, teacher=teacher, lam=hp["lmbda"])
            else:
                loss, d = self._grad(prob, w)
        elif name == "csam":
            loss, g = self._grad(prob, w)
            a = g
            if hp["sigma"] > 0:
                if self.momentum is None:
                    self.momentum = g.clone()
                else:
                    a = g - hp["sigma"] * self.momentum
                    self.momentum = hp["lmbda"] * self.momentum + (1 - hp["lmbda"]) * g
            if hp["adaptive"]:
                t_w = self.weight_mask * (w.abs() + hp["eta"]) + (1 - self.weight_mask)
                e = hp["rho"] * t_w * t_w * a / (float((t_w * a).norm()) + 1e-16)
            else:
                e = hp["rho"] * unit(a)
            _, gp = self._grad(prob, w + e)
            # the component of g orthogonal to gp, by projection
            g_perp = g - float(g @ gp) / float(gp @ gp) * gp
            d = gp - hp["alpha"] * g_perp
        else:
            raise KeyError(name)
        w = self.adam.update(w, d)
        if name == "mesa":
            self.ema = hp["ema_decay"] * self.ema + (1 - hp["ema_decay"]) * w
        self.t += 1
        return w, loss
