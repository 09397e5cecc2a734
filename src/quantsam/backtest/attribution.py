"""Return attribution of an index-enhanced portfolio: where its excess return over the benchmark came from.

On each day d the active weights at the previous close ``a = w_{d-1} - b_{d-1}`` have factor exposures
``X_{d-1}' a`` (industries, styles); times the factor returns of that day (:mod:`quantsam.portfolio.risk`) they give
each factor's contribution. Costs are the day's trading costs (a negative contribution); *specific* is what is left
of the daily excess return: stock picking beyond the factors, plus the fill day's VWAP timing. Contributions are
summed per day and annualised arithmetically (mean x 252), so they add up to the arithmetic annual excess.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantsam.portfolio.risk import RiskInputs


def attribute(risk: RiskInputs, rows: np.ndarray, weights_prev: np.ndarray, bench_prev: np.ndarray,
              excess: np.ndarray, costs: np.ndarray, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Daily contributions: columns ``industry``, one per style, ``costs``, ``specific``, ``excess``.

    ``rows``: the panel row of each day's previous close (d - 1); ``weights_prev`` / ``bench_prev``: ``[D, N]``
    portfolio and benchmark weights at those closes; ``excess`` / ``costs``: ``[D]`` daily excess return and cost."""
    k_ind = risk.n_industries
    out = np.zeros((len(rows), 1 + len(risk.styles.names)))
    for i, t in enumerate(rows):
        a = weights_prev[i] - bench_prev[i]
        names = np.nonzero(np.abs(a) > 0)[0]
        k = t - risk.row0
        if not len(names) or k < 0 or k >= len(risk.fr.f):
            continue
        e = risk.exposures(t, names).T @ a[names]
        contrib = e * risk.fr.f[k]
        out[i, 0] = contrib[:k_ind].sum()
        out[i, 1:] = contrib[k_ind:]
    df = pd.DataFrame(out, index=dates, columns=["industry", *risk.styles.names])
    df["costs"] = -costs
    df["specific"] = excess - df.sum(axis=1)
    df["excess"] = excess
    return df


def annual_attribution(df: pd.DataFrame) -> dict[str, float]:
    """Each contribution annualised arithmetically (mean x 252): ``attr_<name>``."""
    return {f"attr_{c}": float(df[c].mean() * 252) for c in df.columns}
