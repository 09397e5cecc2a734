"""The side tables' door: index weights, index members and industry labels checked against the daily bars the way
the bars are checked against the contract (:func:`quantsam.data.contract.validate_daily`).

Everything unusual is counted and goes into the ingest report; what would make a result wrong is a
:class:`~quantsam.errors.DataError` naming the file, the column and the fix:

* **index weights** (``date, index_code, code, weight``): a NaN/inf weight (it makes that date's weight sum NaN, so
  the benchmark return of the day silently becomes 0), a negative weight, duplicate ``(index_code, date, code)``
  rows, a date whose weights miss their total (1, or 100 when given in percent) by more than
  :data:`WEIGHT_SUM_TOLERANCE` (the benchmark would be renormalised over part of the index), an index whose weights
  sum to neither 1 nor 100, and weights none of whose dates within the bars' span is a trading day (another
  calendar, or dates shifted by a time zone). Dates outside the calendar and codes the bars do not have are counted
  (those rows are not used);
* **index members** (``index_code, code, start_date, end_date``): an interval without a start date (it would never be
  a member) or ending before it starts, and rows without an index or code; open intervals (no end date), intervals
  outside the calendar and codes the bars lack are counted;
* **industry** (``code, industry``): a code with two different labels (one snapshot label per code); missing labels
  (those names share the 'unknown' group) and codes the bars lack are counted.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from quantsam.errors import DataError

log = logging.getLogger(__name__)

#: how far a date's index weights may sum from their total (1, or 100 in percent) before the benchmark built from
#: them is wrong; the real CSI500 weights of ../shared/data/real stay within 1.1%
WEIGHT_SUM_TOLERANCE = 0.05
#: the totals index weights are published in: fractions (1) or percent (100)
WEIGHT_TOTALS = {1.0: "fraction", 100.0: "percent"}


def _first(df: pd.DataFrame, mask: np.ndarray, cols: list[str], k: int = 3) -> str:
    rows = df.loc[np.asarray(mask), [c for c in cols if c in df.columns]].head(k)
    return "; ".join(", ".join(f"{c}={v}" for c, v in r.items()) for r in rows.astype(str).to_dict("records"))


def _dates(col: pd.Series) -> pd.Series:
    return pd.to_datetime(col, errors="coerce")


def check_weights(w: pd.DataFrame, calendar: pd.DatetimeIndex, codes: set[str], f: str,
                  problems: list[str]) -> dict:
    """Counts of the index-weight table ``f``; what would make a benchmark wrong is appended to ``problems``."""
    if w is None or not len(w):
        return {"rows": 0}
    v = pd.to_numeric(w["weight"], errors="coerce").to_numpy(dtype=np.float64)
    d = _dates(w["date"])
    bad = ~np.isfinite(v)
    neg = np.isfinite(v) & (v < 0)
    dup = w.duplicated(["index_code", "date", "code"]).to_numpy()
    off_cal = ~d.isin(calendar).to_numpy()
    rep: dict = {"rows": len(w), "nan_weights": int(bad.sum()), "negative_weights": int(neg.sum()),
                 "duplicate_rows": int(dup.sum()), "rows_off_calendar": int(off_cal.sum()),
                 "dates_off_calendar": int(d[off_cal].nunique()),
                 "codes_not_in_bars": int(len(set(w["code"].astype(str)) - codes))}
    cols = ["index_code", "date", "code", "weight"]
    if bad.any():
        problems.append(f"{f}: column 'weight': {int(bad.sum()):,} NaN/inf weight(s) on {d[bad].nunique():,} date(s) "
                        f"(first: {_first(w, bad, cols)}); a NaN makes its date's weight sum NaN and that day's "
                        "benchmark return 0. Fix: fill them from the index provider, or drop those dates' rows of "
                        "that index (the benchmark then uses float-cap weights within the members on them)")
    if neg.any():
        problems.append(f"{f}: column 'weight': {int(neg.sum()):,} negative weight(s) (first: {_first(w, neg, cols)}). "
                        "Fix: index weights are >= 0; re-export them")
    if dup.any():
        problems.append(f"{f}: columns 'index_code, date, code': {int(dup.sum()):,} duplicate row(s) (first: "
                        f"{_first(w, dup, cols)}). Fix: one weight per index, date and code "
                        "(df.drop_duplicates(['index_code', 'date', 'code']))")
    inside = ((d >= calendar[0]) & (d <= calendar[-1])).to_numpy() if len(calendar) else np.zeros(len(w), bool)
    if inside.any() and off_cal[inside].all():  # dates in the bars' span, none a trading day: another calendar
        problems.append(f"{f}: column 'date': none of its {d[inside].nunique():,} date(s) within the bars' span "
                        f"({calendar[0].date()}..{calendar[-1].date()}) is a trading day of the daily bars (first: "
                        f"{d[inside].min()}), so no weight is ever used. Fix: the weights' dates must be the bars' "
                        "trading dates (naive exchange-local dates, not shifted by a time zone)")
    if (~bad & ~dup).any():  # dates with a NaN or a duplicate are named above: their sums say nothing more
        keys = [w["index_code"].astype(str).to_numpy(), d.to_numpy()]
        flagged = pd.Series(bad | dup).groupby(keys).any()
        sums = pd.Series(np.where(bad | dup, 0.0, v)).groupby(keys).sum()[~flagged]
        for idx, s in sums.groupby(level=0):
            s = s.droplevel(0)
            med = float(s.median())
            total = next((t for t in WEIGHT_TOTALS if abs(med / t - 1) <= WEIGHT_SUM_TOLERANCE), None)
            if total is None:
                problems.append(f"{f}: column 'weight': index {idx}'s weights sum to {med:.4g} per date (median over "
                                f"{len(s):,} dates), neither 1 nor 100 (percent). Fix: export the weight of every "
                                "constituent (a partial list gives a wrong benchmark)")
                continue
            far = (s / total - 1).abs() > WEIGHT_SUM_TOLERANCE
            rep[f"sum_{idx}"] = {"unit": WEIGHT_TOTALS[total], "dates": len(s), "dates_far_from_total": int(far.sum()),
                                 "min": round(float(s.min()), 6), "max": round(float(s.max()), 6)}
            if far.any():
                first = ", ".join(f"{t.date()}: {x:.4g}" for t, x in s[far].head(3).items())
                problems.append(f"{f}: column 'weight': index {idx}'s weights sum to more than "
                                f"{WEIGHT_SUM_TOLERANCE:.0%} away from {total:g} on {int(far.sum()):,} date(s) "
                                f"(first: {first}); the benchmark would be renormalised over part of the index. Fix: "
                                "re-export those dates complete, or drop their rows (float-cap weights within the "
                                "members are used on them)")
    return rep


def check_members(m: pd.DataFrame, calendar: pd.DatetimeIndex, codes: set[str], f: str, problems: list[str]) -> dict:
    """Counts of the index-members table ``f``; intervals that cannot mean what they say go to ``problems``."""
    if m is None or not len(m):
        return {"intervals": 0}
    start, end = _dates(m["start_date"]), _dates(m["end_date"])
    cols = ["index_code", "code", "start_date", "end_date"]
    no_id = (m["index_code"].isna() | m["code"].isna()).to_numpy()
    no_start = start.isna().to_numpy()
    backwards = (end < start).to_numpy().copy()
    if len(calendar):  # an interval starting after the last bar (an open one closed at the data's end) is unused
        backwards &= (start <= calendar[-1]).to_numpy()
    rep = {"intervals": len(m), "open_intervals": int(end.isna().sum()), "no_start_date": int(no_start.sum()),
           "end_before_start": int(backwards.sum()), "codes_not_in_bars": int(len(set(m["code"].astype(str)) - codes))}
    if len(calendar):
        rep["intervals_off_calendar"] = int(((start > calendar[-1]) | (end < calendar[0])).sum())
    if no_id.any():
        problems.append(f"{f}: columns 'index_code, code': {int(no_id.sum()):,} row(s) without an index or a code "
                        f"(first: {_first(m, no_id, cols)}). Fix: fill or drop them")
    if no_start.any():
        problems.append(f"{f}: column 'start_date': {int(no_start.sum()):,} interval(s) have no start date (first: "
                        f"{_first(m, no_start, cols)}); such a name would never be a member. Fix: the date it joined "
                        "the index")
    if backwards.any():
        problems.append(f"{f}: column 'end_date': {int(backwards.sum()):,} interval(s) end before they start (first: "
                        f"{_first(m, backwards, cols)}). Fix: correct (or swap) those dates")
    return rep


def check_industry(ind: pd.DataFrame, codes: set[str], f: str, problems: list[str]) -> dict:
    """Counts of the industry table ``f``; a code with two labels goes to ``problems``."""
    if ind is None or not len(ind):
        return {"codes": 0}
    labelled = ind.dropna(subset=["industry"])
    n_labels = labelled.assign(code=labelled["code"].astype(str)).groupby("code")["industry"].nunique()
    two = n_labels[n_labels > 1]
    rep = {"codes": int(ind["code"].nunique()), "missing_labels": int(ind["industry"].isna().sum()),
           "codes_with_two_labels": len(two), "codes_not_in_bars": int(len(set(ind["code"].astype(str)) - codes))}
    if len(two):
        problems.append(f"{f}: column 'industry': {len(two):,} code(s) have more than one label (first: "
                        f"{list(two.index[:3])}). Fix: one row per code (industry labels are a snapshot)")
    return rep


def validate_side_tables(daily: pd.DataFrame, members: pd.DataFrame | None, weights: pd.DataFrame | None,
                         industry: pd.DataFrame | None, files: dict[str, str] | None = None) -> dict:
    """Check the side tables against the bars' calendar and codes; returns the counts (for the ingest report) or
    raises one :class:`DataError` listing every problem, each naming its file (``files[table]``), column and fix."""
    files = files or {}
    calendar = pd.DatetimeIndex(np.sort(pd.unique(daily["date"])))
    col = daily["code"]
    codes = set((col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else pd.unique(col)).astype(str))
    problems: list[str] = []
    rep = {"index_weights": check_weights(weights, calendar, codes, files.get("index_weights", "index_weights"),
                                          problems),
           "index_members": check_members(members, calendar, codes, files.get("index_members", "index_members"),
                                          problems),
           "industry": check_industry(industry, codes, files.get("industry", "industry"), problems)}
    if problems:
        raise DataError(f"{len(problems)} problem(s) in the side tables:\n" + "\n".join(f"  - {p}" for p in problems))
    counted = {t: {k: v for k, v in r.items() if k not in ("rows", "intervals", "codes") and v and not
                   isinstance(v, dict)} for t, r in rep.items()}
    if any(counted.values()):
        log.info("side tables: %s", {t: c for t, c in counted.items() if c})
    return rep


#: the counts worth a line in the ingest report's notes, and what each means for the run
_NOTES = {("index_weights", "rows_off_calendar"): "index-weight rows on dates that are not trading days of the bars "
                                                  "(unused)",
          ("index_weights", "codes_not_in_bars"): "codes in the index weights without bars (their weight is left out "
                                                  "and the rest renormalised)",
          ("index_members", "codes_not_in_bars"): "index members without bars (never in the universe)",
          ("index_members", "intervals_off_calendar"): "membership intervals outside the bars' dates (unused)",
          ("industry", "missing_labels"): "names without an industry label (the 'unknown' group)",
          ("industry", "codes_not_in_bars"): "industry labels of codes without bars (unused)"}


def side_table_notes(rep: dict) -> list[str]:
    """One line per nonzero count of :func:`validate_side_tables`' report that changes what a run uses."""
    return [f"{rep[t][k]:,} {what}" for (t, k), what in _NOTES.items() if rep.get(t, {}).get(k)]
