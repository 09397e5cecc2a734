"""Scores -> expected active returns at the rebalance horizon, with an IC estimated from past data only.

Grinold & Kahn, *Active Portfolio Management* (2nd ed., ch. 10 "Forecasting Basics"): the refined forecast of a
standardised score is ``alpha = IC x volatility x score`` — the information coefficient (the correlation of the
scores with the returns that follow them) times the name's residual volatility over the horizon times its z-score.
quantsam uses

* ``score``: the signal's z-score over the rebalance's candidates (:func:`zscores`);
* ``volatility``: the risk model's specific volatility over the holding period, ``sqrt(horizon x d_i)`` with ``d_i``
  the daily specific variance (names without one get the candidates' median);
* ``IC``: the signal's rank IC over the index members in the holding periods that ended before the decision
  (:func:`period_rank_ic`), averaged over the last ``window`` periods and shrunk towards a prior
  (:func:`shrunk_ic`: ``(n mean + n0 prior) / (n + n0)``), floored at 0 — a signal that stopped predicting trades
  nothing but what its bounds force.

The alphas are in return units over one holding period, so a trading cost per unit of turnover can sit beside them
in one objective (``portfolio.objective=alpha``, :mod:`quantsam.portfolio.problem`).
"""

from __future__ import annotations

import numpy as np

from quantsam.crosssection import rank_ic_rows, zscore_vector


def zscores(x: np.ndarray) -> np.ndarray:
    """Cross-sectional z-scores of the finite values (population std); non-finite -> 0 (neutral)."""
    return zscore_vector(x, np.ones(len(x), dtype=bool))


def period_rank_ic(score: np.ndarray, ret: np.ndarray) -> float:
    """Spearman correlation of ``score`` with the realised ``ret`` over the names where both are finite (NaN below 3
    names or without variation): one row of :func:`quantsam.crosssection.rank_ic_rows`."""
    return float(rank_ic_rows(np.asarray(score)[None], np.asarray(ret)[None])[0])


def shrunk_ic(past: list[float] | np.ndarray, prior: float, prior_weight: float, window: int) -> float:
    """The IC to forecast with: the mean of the last ``window`` finite past ICs shrunk towards ``prior`` with the
    weight of ``prior_weight`` periods, floored at 0."""
    v = np.asarray([x for x in past if np.isfinite(x)][-int(window):], dtype=np.float64)
    est = (v.sum() + prior_weight * prior) / (len(v) + prior_weight) if (len(v) + prior_weight) > 0 else prior
    return max(0.0, float(est))


def expected_alpha(score: np.ndarray, specific_var_daily: np.ndarray, ic: float, horizon_days: int) -> np.ndarray:
    """``IC x sqrt(horizon x d_i) x z_i`` per candidate (module docstring); a missing or non-positive specific
    variance takes the median of the others."""
    d = np.asarray(specific_var_daily, dtype=np.float64)
    ok = np.isfinite(d) & (d > 0)
    med = float(np.median(d[ok])) if ok.any() else 0.0
    d = np.where(ok, d, med)
    return float(ic) * np.sqrt(horizon_days * d) * zscores(score)
