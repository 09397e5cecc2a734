"""Data-quality reports for ingested real data: a summary and the price-limit consistency by board.

A daily move beyond the board's limit (main 10%, ChiNext 20% from 2020-08-24, STAR 20%, ST 5%; rounding to the fen
allowed) should not happen except on a listing's first days (no limit) and right after a suspension (a resumption
after a major event can be unlimited) — so those are reported separately and a high share elsewhere points at a data
error (wrong preclose, units, a split not in the adjustment factor).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantsam.data.contract import limit_pct


def limit_consistency(daily: pd.DataFrame) -> pd.DataFrame:
    """Per board: rows, share of |close / preclose - 1| beyond the limit, split into first 5 listing days, days after a
    suspension (gap in the stock's rows vs the calendar), and all other days (expected ~0)."""
    d = daily[["date", "code", "close", "preclose", "board", "is_st"]].copy()
    cal = pd.Index(np.sort(d["date"].unique()))
    pos = cal.get_indexer(d["date"])
    d["_pos"] = pos
    d = d.sort_values(["code", "date"], kind="stable")
    g = d.groupby("code", observed=True, sort=False)
    gap = d["_pos"].to_numpy() - g["_pos"].shift().to_numpy()
    nth = g.cumcount().to_numpy()
    st = d["is_st"].fillna(False).to_numpy(bool)
    pct = limit_pct(d["board"].astype(str).to_numpy(), st, d["date"].to_numpy())
    r = d["close"].to_numpy() / d["preclose"].to_numpy() - 1
    beyond = np.abs(r) > pct + 0.0051 / d["preclose"].to_numpy() + 1e-9
    kind = np.where(nth < 5, "listing", np.where(np.nan_to_num(gap, nan=1) > 1, "after_suspension", "normal"))
    out = pd.DataFrame({"board": np.where(st, "st_" + d["board"].astype(str).to_numpy(), d["board"].astype(str)),
                        "kind": kind, "beyond": beyond})
    tab = out.groupby(["board", "kind"])["beyond"].agg(rows="size", beyond_share="mean").unstack("kind")
    return tab


def summary(daily: pd.DataFrame) -> dict:
    """Stocks, dates, date range, missing rates of the optional fields, VWAP proxy share."""
    return {
        "stocks": int(daily["code"].nunique()), "dates": int(daily["date"].nunique()), "rows": len(daily),
        "first_date": str(daily["date"].min().date()), "last_date": str(daily["date"].max().date()),
        "missing_rate": {c: round(float(daily[c].isna().mean()), 4) for c in ("amount", "float_shares", "is_st")
                         if c in daily.columns},
        "vwap_proxy_share": round(float(daily["vwap_proxy"].mean()), 4) if "vwap_proxy" in daily.columns else 0.0,
        "boards": daily["board"].astype(str).value_counts().to_dict(),
    }
