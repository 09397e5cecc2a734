"""The final signal on dense arrays: each model's seed-averaged prediction z-scored per day, then equal-weighted.

Methodology (Huatai AI-84): the daily and the weekly GRU are trained separately; the signal is the per-day
cross-sectional z-score of each model's prediction, averaged with equal weights [C structure, I z-score].
"""

from __future__ import annotations

import warnings

import numpy as np

from quantsam.crosssection import mad_winsorize, zscore


def combine_equal_weight(scores: dict[str, np.ndarray], models: list[str] | tuple[str, ...],
                         mad_k: float | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``scores[m]``: ``[T, N]`` seed-averaged predictions of model ``m`` (NaN = no prediction). Returns the combined
    ``[T, N]`` score — the mean of the models' per-day z-scores present for a name — and each model's z-scores.
    With ``mad_k`` each model's predictions are first clipped per day to median +- mad_k x MAD (``signal.mad_k``), so
    a few extreme names cannot dominate the z-score and the equal-weight mean."""
    missing = [m for m in models if m not in scores]
    if missing:
        raise ValueError(f"signal.models lists {missing}, but the predictions hold only {sorted(scores)}")
    z = {m: zscore(scores[m] if mad_k is None else mad_winsorize(scores[m], float(mad_k))) for m in models}
    stack = np.stack([z[m] for m in models])
    with warnings.catch_warnings():  # names no model scored: 'mean of empty slice', their score stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        score = np.nanmean(stack, axis=0)
    return score, z
