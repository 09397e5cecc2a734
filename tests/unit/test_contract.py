"""The data contract's checks and their messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantsam.data.contract import board_of, limit_pct, limit_prices, validate_daily
from quantsam.errors import DataError


@pytest.fixture
def frame():
    dates = pd.to_datetime(["2020-01-02", "2020-01-02", "2020-01-03", "2020-01-03"])
    return pd.DataFrame({
        "date": dates, "code": ["000001.SZ", "600000.SH"] * 2,
        "open": [10.0, 5.0, 10.2, 5.1], "high": [10.5, 5.2, 10.4, 5.3], "low": [9.8, 4.9, 10.0, 5.0],
        "close": [10.1, 5.1, 10.3, 5.2], "preclose": [10.0, 5.0, 10.1, 5.1], "volume": [1e6, 2e6, 1.1e6, 2.1e6],
        "amount": [1.01e7, 1.02e7, 1.12e7, 1.09e7], "vwap": [10.1, 5.1, 10.18, 5.19], "adj_factor": [1.0] * 4,
        "float_shares": [1e9] * 4, "is_st": [False] * 4, "board": ["main"] * 4,
    })


def test_valid_frame_passes(frame):
    rep = validate_daily(frame)
    assert (rep.n_rows, rep.n_codes, rep.n_dates) == (4, 2, 2)
    assert sum(rep.missing_optional.values()) == 0


@pytest.mark.parametrize("mutate,column,what", [
    (lambda f: f.drop(columns=["vwap"]), "vwap", "missing required"),
    (lambda f: f.assign(close=f["close"].astype(str)), "close", "numeric dtype"),
    (lambda f: f.assign(date=f["date"].dt.strftime("%Y/%m/%d")), "date", "expected datetime64"),
    (lambda f: f.assign(date=["2020-01-02", "bad", "2020-01-03", "2020-01-03"]), "date", "not parseable"),
    (lambda f: f.iloc[[2, 3, 0, 1]], "date", "out of order"),
    (lambda f: f.assign(code=["000001.SZ"] * 4), "date, code", "duplicate"),
    (lambda f: f.assign(low=[9.8, 0.0, 10.0, 5.0]), "low", "not finite positive"),
    (lambda f: f.assign(close=[10.1, np.inf, 10.3, 5.2]), "close", "not finite positive"),
    (lambda f: f.assign(adj_factor=[1.0, 0.0, 1.0, 1.0]), "adj_factor", "not finite positive"),
    (lambda f: f.assign(volume=[1e6, np.nan, 1e6, 1e6]), "volume", "missing or infinite"),
    (lambda f: f.assign(code=["000001", "600000.SH"] * 2), "code", "exchange suffix"),
    (lambda f: f.assign(date=[20200102, 20200102, 20200103, 20200103]), "date", "format='%Y%m%d'"),
    (lambda f: f.iloc[:0], "empty", "date range"),
    (lambda f: f.assign(high=[9.0, 5.2, 10.4, 5.3]), "high", "high < low"),
    (lambda f: f.assign(open=[10.0, 5.0, 10.2, 5.9]), "open", "outside [low, high]"),
    (lambda f: f.assign(vwap=[10.1, 6.0, 10.18, 5.19]), "vwap", "outside [low, high]"),
    (lambda f: f.assign(volume=[1e6, -5.0, 1e6, 1e6]), "volume", "negative"),
    (lambda f: f.assign(board=["main", "nasdaq", "main", "main"]), "board", "unknown board"),
])
def test_errors_name_column_count_and_rows(frame, mutate, column, what):
    with pytest.raises(DataError) as ei:
        validate_daily(mutate(frame))
    msg = str(ei.value)
    assert f"'{column}'" in msg or column in msg
    assert what in msg
    assert "Fix" in msg


def test_offending_rows_are_shown(frame):
    bad = frame.assign(volume=[1e6, -5.0, 1e6, 1e6])
    with pytest.raises(DataError, match=r"1 row\(s\)[\s\S]*600000.SH"):
        validate_daily(bad)


def test_missing_optional_fields_are_counted_and_logged(frame, caplog):
    f = frame.drop(columns=["float_shares"]).assign(amount=[np.nan, 1.0, 1.0, np.nan])
    rep = validate_daily(f)
    assert rep.missing_optional == {"amount": 2, "float_shares": 4, "is_st": 0}
    assert "amount" in caplog.text and "float_shares" in caplog.text


def test_boards_and_limits():
    assert [board_of(c) for c in ("600000.SH", "000001.SZ", "300750.SZ", "688981.SH", "830799.BJ")] == [
        "main", "main", "chinext", "star", "bse"]
    b = np.array(["main", "chinext", "chinext", "star", "main"])
    st = np.array([False, False, False, False, True])
    d = pd.to_datetime(["2020-08-21", "2020-08-21", "2020-08-24", "2019-08-01", "2020-01-02"]).to_numpy()
    assert limit_pct(b, st, d).tolist() == [0.10, 0.10, 0.20, 0.20, 0.05]
    up, down = limit_prices(np.array([10.05]), np.array([0.10]))
    assert up[0] == pytest.approx(11.06) and down[0] == pytest.approx(9.05)  # 11.055 -> 11.06, 9.045 -> 9.05
