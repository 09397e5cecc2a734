"""Trading calendars.

The synthetic market uses an approximate SSE/SZSE calendar: weekdays minus the fixed national holidays (New Year,
Labour Day, National Day) and the Spring Festival week. It is written by hand because the synthetic market must be
self-contained; real data brings its own calendar (the dates present in the daily bars).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from quantsam.errors import DataError

log = logging.getLogger(__name__)

#: the exchanges' clock: a market's dates are naive calendar dates on it (SSE/SZSE/BSE trade on Beijing time)
EXCHANGE_TZ = "Asia/Shanghai"

# Lunar New Year (Spring Festival) dates; the exchanges close from its eve for about a week.
_LUNAR_NEW_YEAR = {
    2005: "2005-02-09", 2006: "2006-01-29", 2007: "2007-02-18", 2008: "2008-02-07", 2009: "2009-01-26",
    2010: "2010-02-14", 2011: "2011-02-03", 2012: "2012-01-23", 2013: "2013-02-10", 2014: "2014-01-31",
    2015: "2015-02-19", 2016: "2016-02-08", 2017: "2017-01-28", 2018: "2018-02-16", 2019: "2019-02-05",
    2020: "2020-01-25", 2021: "2021-02-12", 2022: "2022-02-01", 2023: "2023-01-22", 2024: "2024-02-10",
    2025: "2025-01-29", 2026: "2026-02-17", 2027: "2027-02-06", 2028: "2028-01-26", 2029: "2029-02-13",
    2030: "2030-02-03",
}


def synthetic_calendar(start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DatetimeIndex:
    """Approximate A-share trading days in ``[start, end]`` (weekdays minus the main holiday closures)."""
    days = pd.bdate_range(start, end)
    md = days.month * 100 + days.day
    closed = (md == 101) | ((md >= 501) & (md <= 503)) | ((md >= 1001) & (md <= 1007))
    for year in range(days.year.min() if len(days) else 0, (days.year.max() if len(days) else -1) + 1):
        lny = _LUNAR_NEW_YEAR.get(year)
        if lny is None:
            continue
        t0 = pd.Timestamp(lny)
        closed |= (days >= t0 - pd.Timedelta(days=1)) & (days <= t0 + pd.Timedelta(days=6))
    return days[~closed]


def week_ids(dates: pd.DatetimeIndex) -> np.ndarray:
    """Consecutive integer id of the ISO week (Mon-Sun) of each date: 0, 0, 0, 1, 1, ... (dates must be sorted)."""
    monday = (dates - pd.to_timedelta(dates.dayofweek, unit="D")).normalize()
    _, ids = np.unique(monday.to_numpy(), return_inverse=True)
    return ids.astype(np.int64)


def naive_exchange_dates(col: pd.Series, source: str, column: str = "date") -> pd.Series:
    """``col`` as it is unless it holds timezone-aware timestamps; those become the naive exchange-local dates they
    stand for, said in the log: midnights on the exchange's clock (:data:`EXCHANGE_TZ`, in any zone) are those
    dates; else midnights on their own zone's clock (dates localized as they were, e.g. ``tz_localize('UTC')``) are
    the dates written. Other times of day are a :class:`DataError` naming ``source`` and ``column`` with the fix —
    which day a 07:00 UTC stamp belongs to is the user's to say, not ours to guess."""
    tz = getattr(col.dtype, "tz", None)
    if tz is None:
        return col
    local = col.dt.tz_convert(EXCHANGE_TZ).dt.tz_localize(None)
    wall = col.dt.tz_localize(None)
    if bool((local.dropna() == local.dropna().dt.normalize()).all()):
        out, how = local, f"midnights on the exchange's clock ({EXCHANGE_TZ})"
    elif bool((wall.dropna() == wall.dropna().dt.normalize()).all()):
        out, how = wall, f"midnights in {tz}: the dates as written"
    else:
        first = col.dropna().iloc[0] if col.notna().any() else None
        raise DataError(f"{source}: column '{column}' holds timezone-aware timestamps ({tz}) with times of day (e.g. "
                        f"{first}); a market's dates are naive exchange-local dates. Fix: convert them, e.g. "
                        f"df['{column}'] = df['{column}'].dt.tz_convert('{EXCHANGE_TZ}').dt.tz_localize(None)"
                        ".dt.normalize()")
    log.warning("%s: column '%s' holds timezone-aware timestamps (%s), read as naive exchange-local dates (%s; "
                "first %s -> %s)", source, column, tz, how, col.dropna().iloc[0] if col.notna().any() else "-",
                out.dropna().iloc[0].date() if out.notna().any() else "-")
    return out
