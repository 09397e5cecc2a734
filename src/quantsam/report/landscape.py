"""Loss landscapes and sharpness of the trained factor models.

Landscape (Li et al., "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018 — the study's method): the origin
is the validation-best weights w*; PCA of the per-epoch weight vectors minus w* gives two axes d1, d2 (their explained
variance is reported); the full-sample loss L(w* + a d1 + b d2) is evaluated on a grid on a training sample and a
test sample, drawn as contours with the same levels for AdamW and the SAM-family model, with the training trajectory
projected onto the plane. Every grid point is one batched forward pass over the whole sample (no loop over samples).

Sharpness: the top Hessian eigenvalue of the training-sample loss at w* by power iteration on exact Hessian-vector
products (double backward; as in the WSAM paper), and the rho-ball sharpness max_{||e|| <= rho} L(w* + e) - L(w*)
estimated by normalised gradient ascent steps (each step e = rho g / ||g|| with g = grad L(w* + e)).
"""

from __future__ import annotations

import logging
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torch.nn.utils import parameters_to_vector, vector_to_parameters  # noqa: E402

from quantsam.models.gru import reference_gru  # noqa: E402

log = logging.getLogger(__name__)


def sample_batch(fs, freq: str, dates: np.ndarray, n_names: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``X [D, n, L, F]`` inputs and ``Y [D, n]`` labels (NaN = padding) of ``n_names`` fixed random names per date."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for t in dates:
        x, names = fs.inputs(freq, int(t))
        y = fs.label[t, names]
        ok = np.nonzero(np.isfinite(y))[0]
        pick = np.sort(rng.choice(ok, min(n_names, len(ok)), replace=False))
        xb = np.zeros((n_names, *x.shape[1:]), dtype=np.float32)
        yb = np.full(n_names, np.nan, dtype=np.float32)
        xb[: len(pick)], yb[: len(pick)] = x[pick], y[pick]
        xs.append(xb)
        ys.append(yb)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def sample_loss(model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Mean over dates of the negative Pearson IC (the training loss), all dates in one forward pass."""
    D, n = Y.shape
    pred = model(X.reshape(D * n, *X.shape[2:])).reshape(D, n)
    ok = torch.isfinite(Y)
    cnt = ok.sum(1).clamp(min=1)
    p = torch.where(ok, pred, torch.zeros_like(pred))
    y = torch.where(ok, Y, torch.zeros_like(Y))
    pc = torch.where(ok, p - p.sum(1, keepdim=True) / cnt[:, None], torch.zeros_like(p))
    yc = torch.where(ok, y - y.sum(1, keepdim=True) / cnt[:, None], torch.zeros_like(y))
    ic = (pc * yc).sum(1) / (torch.sqrt((pc * pc).sum(1) * (yc * yc).sum(1)) + 1e-12)
    return -ic.mean()


def pca_axes(traj: torch.Tensor, origin: torch.Tensor, seed: int = 0):
    """(directions [2, P], trajectory coordinates [E, 2], explained variance ratio [2]). With fewer than two
    independent epochs the missing axis is a random direction orthogonal to the first (explained variance 0)."""
    d = (traj - origin[None]).double()
    _, s, vt = torch.linalg.svd(d, full_matrices=False)
    dirs = [vt[i] for i in range(min(2, int((s > 1e-12).sum())))]
    g = torch.Generator().manual_seed(seed)
    while len(dirs) < 2:
        r = torch.randn(origin.numel(), generator=g, dtype=torch.float64)
        for q in dirs:
            r -= (r @ q) * q
        dirs.append(r / r.norm())
    dirs_t = torch.stack(dirs)
    explained = (s[:2] ** 2 / (s ** 2).sum()).tolist() if (s ** 2).sum() > 0 else [0.0, 0.0]
    explained += [0.0] * (2 - len(explained))
    return dirs_t.float(), (d @ dirs_t.T).float(), explained


@torch.no_grad()
def loss_grid(model, origin: torch.Tensor, dirs: torch.Tensor, X, Y, alphas, betas) -> np.ndarray:
    """``[len(betas), len(alphas)]`` losses at ``origin + a d1 + b d2`` (weights restored afterwards)."""
    params = list(model.parameters())
    out = np.empty((len(betas), len(alphas)))
    try:
        for i, b in enumerate(betas):
            for j, a in enumerate(alphas):
                vector_to_parameters(origin + float(a) * dirs[0] + float(b) * dirs[1], params)
                out[i, j] = float(sample_loss(model, X, Y))
    finally:
        vector_to_parameters(origin, params)
    return out


def top_hessian_eigenvalue(model, X, Y, iters: int = 20, seed: int = 0) -> float:
    """Largest-magnitude Hessian eigenvalue by power iteration on exact HVPs (Rayleigh quotient of the last step)."""
    params = [p for p in model.parameters() if p.requires_grad]
    g = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=g) for p in params]
    nv = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / nv for x in v]
    lam = float("nan")
    # cuDNN RNNs and the fused CPU GRU (first-order by design) have no double backward: torch.nn.GRU's CPU path has
    with torch.backends.cudnn.flags(enabled=False), reference_gru(model):
        for _ in range(iters):
            loss = sample_loss(model, X, Y)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            hv = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(grads, v, strict=True)), params)
            lam = float(sum((h * vi).sum() for h, vi in zip(hv, v, strict=True)))
            nh = torch.sqrt(sum((h * h).sum() for h in hv))
            if nh == 0:
                return 0.0
            v = [h.detach() / nh for h in hv]
    return lam


def rho_sharpness(model, X, Y, rho: float = 0.05, steps: int = 5) -> tuple[float, float]:
    """(max loss found in the rho-ball minus L(w), L(w)) by normalised gradient ascent from w."""
    params = list(model.parameters())
    w0 = parameters_to_vector(params).detach().clone()
    with torch.no_grad():
        l0 = float(sample_loss(model, X, Y))
    best = l0
    e = torch.zeros_like(w0)
    try:
        for _ in range(steps):
            vector_to_parameters(w0 + e, params)
            loss = sample_loss(model, X, Y)
            g = parameters_to_vector(torch.autograd.grad(loss, params)).detach()
            e = rho * g / (g.norm() + 1e-12)
            with torch.no_grad():
                vector_to_parameters(w0 + e, params)
                best = max(best, float(sample_loss(model, X, Y)))
    finally:
        vector_to_parameters(w0, params)
    return best - l0, l0


def landscape_figure(grids: dict, extent: tuple, trajs: dict, explained: dict):
    """2 x 2 contours: rows = models, columns = train / test, the same levels within a column."""
    models = list(grids)
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 4.5 * len(models)), squeeze=False)
    for c, split in enumerate(("train", "test")):
        vals = np.concatenate([grids[m][split].ravel() for m in models])
        levels = np.linspace(vals.min(), vals.max(), 15)
        for r, m in enumerate(models):
            ax = axes[r, c]
            a, b = extent[m]
            cs = ax.contourf(a, b, grids[m][split], levels=levels, cmap="viridis")
            ax.contour(a, b, grids[m][split], levels=levels, colors="k", linewidths=0.3)
            ax.plot(trajs[m][:, 0], trajs[m][:, 1], "w.-", lw=1, ms=4, label="trajectory")
            ax.plot([0], [0], "r*", ms=12, label="valid-best weights")
            ev = explained[m]
            ax.set_title(f"{m}, {split} loss (PCA var {100 * ev[0]:.0f}% / {100 * ev[1]:.0f}%)")
            fig.colorbar(cs, ax=ax)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def study_diagnostics(cfg, all_jobs: list, market) -> dict:
    """Sharpness per optimizer and the AdamW vs ``report.landscape_vs`` landscapes of a finished study
    (``all_jobs``: :func:`quantsam.report.collect.collect`; ``market``: the :class:`~quantsam.features.market.Market`
    the jobs trained on)."""
    from quantsam.features.dataset import FeatureSet
    from quantsam.models import build_model
    from quantsam.train.checkpoint import load

    rc = cfg.report
    jobs = {}
    for j in all_jobs:
        jobs.setdefault(j.optimizer, j)
    unit = "w00-daily-s0"
    jobs = {o: j for o, j in jobs.items() if (j.work_dir / "models" / f"{unit}.pt").exists() and j.splits}
    if not jobs:
        return {}
    t0 = time.perf_counter()
    panel = market.panel()
    fs = FeatureSet(panel, int(cfg.features.daily_window), int(cfg.features.weekly_window),
                    int(cfg.features.label_horizon), str(cfg.features.label_price), market.eligible(cfg.universe),
                    ("daily",), cache_mb=0, label=market.label(cfg.features, cfg.universe),
                    normalize=str(cfg.features.normalize))
    split = next(iter(jobs.values())).splits[0]

    def pick(rng_dates):
        lo, hi = np.searchsorted(panel.dates, pd.Timestamp(rng_dates[0])), np.searchsorted(panel.dates,
                                                                                           pd.Timestamp(rng_dates[1]))
        return np.unique(np.linspace(lo, min(hi, len(panel.dates) - 12), int(rc.landscape_days)).astype(int))

    sets = {s: sample_batch(fs, "daily", pick(split[s]), int(rc.landscape_names)) for s in ("train", "test")}
    rows, models = {}, {}
    for o, j in jobs.items():
        m = build_model(cfg.model)
        m.load_state_dict(load(j.work_dir / "models" / f"{unit}.pt"))
        models[o] = m
        lam = top_hessian_eigenvalue(m, *sets["train"], iters=int(rc.power_iters))
        sharp, l_train = rho_sharpness(m, *sets["train"], rho=float(rc.sharpness_rho))
        with torch.no_grad():
            l_test = float(sample_loss(m, *sets["test"]))
        rows[o] = {"top Hessian eigenvalue": lam, f"rho-ball sharpness (rho={rc.sharpness_rho})": sharp,
                   "train loss": l_train, "test loss": l_test, "generalisation gap": l_test - l_train}
    t_sharp = time.perf_counter() - t0
    table = pd.DataFrame(rows).T
    out = {"table": table, "figures": {}}
    pair = ["adamw", rc.landscape_vs if rc.landscape_vs in jobs else next((o for o in jobs if o != "adamw"), None)]
    pair = [o for o in pair if o in jobs and (jobs[o].work_dir / "trajectory" / f"{unit}.pt").exists()]
    t1 = time.perf_counter()
    if pair:
        grids, extent, trajs, explained = {}, {}, {}, {}
        n = int(rc.landscape_grid)
        for o in pair:
            traj = load(jobs[o].work_dir / "trajectory" / f"{unit}.pt")
            origin = parameters_to_vector(models[o].parameters()).detach().clone()
            dirs, coords, ev = pca_axes(traj, origin)
            span = float(rc.landscape_span) * max(float(coords.abs().max()), 1e-3) * 1.2
            a = np.linspace(-span, span, n)
            grids[o] = {s: loss_grid(models[o], origin, dirs, *sets[s], a, a) for s in ("train", "test")}
            extent[o], trajs[o], explained[o] = (a, a), coords.numpy(), ev
        out["figures"]["landscape"] = landscape_figure(grids, extent, trajs, explained)
        out["explained_variance"] = explained
    t_land = time.perf_counter() - t1
    n_train = int(torch.isfinite(sets["train"][1]).sum())
    out["text"] = (f"Daily model, window 0, seed 0. Sharpness on a training sample of {n_train:,} stock-days "
                   f"({len(sets['train'][1])} dates x up to {rc.landscape_names} names): {t_sharp:.0f} s for "
                   f"{len(jobs)} models. Landscapes ({'/'.join(pair) or 'none'}): {rc.landscape_grid} x "
                   f"{rc.landscape_grid} grid on the training and the test sample, {t_land:.0f} s.")
    log.info(out["text"])
    return out
