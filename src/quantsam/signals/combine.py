"""The final signal: each model's prediction (averaged over seeds) z-scored per day, then equal-weighted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantsam.features.labels import zscore


def average_seeds(preds: pd.DataFrame) -> pd.DataFrame:
    """``date, code, model, seed, score`` -> ``date, code, model, score`` (mean over seeds)."""
    return preds.groupby(["date", "code", "model"], observed=True, sort=True)["score"].mean().reset_index()


def combine_equal_weight(preds: pd.DataFrame, models: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Per-day z-score of each model's seed-averaged score, then the mean over the models present for a name.

    Returns ``date, code, score`` (plus one column per model with its z-score).
    """
    avg = average_seeds(preds)
    wide = avg.pivot_table(index=["date", "code"], columns="model", values="score", observed=True)
    missing = [m for m in models if m not in wide.columns]
    if missing:
        raise ValueError(f"signal.models lists {missing}, but the predictions hold only {list(wide.columns)}")
    out = pd.DataFrame(index=wide.index)
    dates = wide.index.get_level_values("date")
    codes = wide.index.get_level_values("code")
    for m in models:
        w = pd.Series(wide[m].to_numpy(), index=[dates, codes]).unstack("code")
        z = pd.DataFrame(zscore(w.to_numpy()), index=w.index, columns=w.columns).stack()
        out[m] = z.reindex(out.index).to_numpy()
    out["score"] = np.nanmean(out[list(models)].to_numpy(), axis=1) if len(out) else []
    return out.reset_index()[["date", "code", "score", *models]]
