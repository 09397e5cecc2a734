"""Bad input gets a clear, early error: a table of hostile inputs across CLI overrides, data files, signal files and
stage reruns. Each case asserts the error type, that the message names the key or file, and that it says the fix;
inputs that are not errors (NaN scores, an empty manifest after a crash) must give the right result instead."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantsam.config import compose, validate
from quantsam.errors import ConfigError, DataError
from tests.cli import isolated, quantsam

ROOT = Path(__file__).parents[2]

# ---- CLI overrides: rejected by the validator before any data is read -------------------------------------------------
CONFIG_CASES = [
    # (overrides, key named in the message, a piece of the fix)
    (["optimizer=sam", "optimizer.rho=inf"], "rho", "finite number"),
    (["optimizer=gsam", "optimizer.alpha=-1"], "alpha", "[0.0, inf]"),
    (["optimizer=wsam", "optimizer.gamma=1.0"], "gamma", "[0.0, 1.0)"),
    (["+optimizer.grad_clip=1"], "optimizer.grad_clip", "trainer.grad_clip"),
    (["+optimizer.rhoo=0.1", "optimizer=sam"], "optimizer.rhoo", "did you mean 'rho'"),
    (["trainer.max_windows=0"], "trainer.max_windows", "integer >= 1"),
    (["trainer.test_start=notadate"], "trainer.test_start", "YYYY-MM-DD"),
    (["trainer.max_names_per_batch=-5"], "trainer.max_names_per_batch", "integer >= 3"),
    (["features.daily_window=2000"], "features.daily_window", "[2, 1000]"),
    (["tracking.uri=bogus://x"], "tracking.uri", "sqlite"),
    (["portfolio.solver=NOSUCHSOLVER"], "portfolio.solver", "CLARABEL"),
    (["trainer.windows=[-1]"], "trainer.windows", "window indices"),
    (["trainer.seeds=[5]"], "trainer.seeds", "[0, trainer.n_seeds)"),
    (["trainer.models=[monthly]"], "trainer.models", "model.frequencies"),
    (["signal.models=[monthly]"], "signal.models", "model.frequencies"),
    (["model.dropout=1.5"], "model.dropout", "[0, 1)"),
    (["data.start=2020-13-45"], "data.start", "YYYY-MM-DD"),
    (["data.n_industries=0"], "data.n_industries", "[1, 30]"),
    (["data.signal_strength=-1"], "data.signal_strength", ">= 0"),
    (["factor_test.horizon=0"], "factor_test.horizon", ">= 1"),
    (["backtest.cost_per_side=0.5"], "backtest.cost_per_side", "[0, 0.05]"),
    (["backtest.universes=[csi42]"], "backtest.universes", "csi300"),
    (["portfolio.max_turnover=nan"], "portfolio.max_turnover", "(0, 2]"),
    (["trainer.device=tpu"], "trainer.device", "cuda"),
    (["seed=-1"], "seed", ">= 0"),
    (["+trainer.epochs=3"], "trainer.epochs", "did you mean 'max_epochs'"),
    (["model.hidden_size=abc"], "model.hidden_size", "int"),
]


@pytest.mark.parametrize("overrides,key,fix", CONFIG_CASES, ids=[" ".join(c[0]) for c in CONFIG_CASES])
def test_bad_config_values_are_listed_with_the_fix(overrides, key, fix):
    with pytest.raises(ConfigError) as ei:
        validate(compose(overrides))
    msg = str(ei.value)
    assert key in msg and fix in msg, msg


def test_a_bad_override_fails_before_any_data_is_read(tmp_path):
    """Through the CLI: exit code != 0, the key and the fix on stderr, and no market generated."""
    proc = quantsam("train", "optimizer=sam", "optimizer.rho=inf", *isolated(tmp_path, mlflow=None), timeout=300)
    assert proc.returncode != 0
    assert "rho=inf" in proc.stderr and "finite number" in proc.stderr
    assert not (tmp_path / "data").exists()


# ---- data files -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    from quantsam.data.synthetic import generate_market

    return generate_market(seed=3, n_stocks=40, start="2019-01-01", end="2020-06-30")


def write_dir(tmp_path: Path, m, daily: pd.DataFrame | None = None) -> Path:
    d = tmp_path / "mkt"
    d.mkdir()
    (m.daily if daily is None else daily).to_parquet(d / "daily.parquet", index=False)
    for t in ("index_members", "index_weights", "industry"):
        getattr(m, t).to_parquet(d / f"{t}.parquet", index=False)
    return d


def at(df: pd.DataFrame, col: str, value, row: int = 5) -> pd.DataFrame:
    out = df.copy()
    out.loc[out.index[row], col] = value
    return out


DATA_CASES = [
    # (mutation of the daily frame, column named, a piece of the fix)
    (lambda d: at(d, "close", -1.0), "close", "price unit"),
    (lambda d: at(d, "open", np.nan), "open", "price unit"),
    (lambda d: at(d, "high", np.inf), "high", "price unit"),
    (lambda d: at(d, "adj_factor", 0.0), "adj_factor", "back-adjustment"),
    (lambda d: at(d, "adj_factor", np.nan), "adj_factor", "back-adjustment"),
    (lambda d: at(d, "volume", np.nan), "volume", "shares traded"),
    (lambda d: pd.concat([d, d.iloc[[3]]]).sort_values(["date", "code"], kind="stable"), "date, code",
     "drop_duplicates"),
    (lambda d: d.assign(date=d["date"].dt.strftime("%Y%m%d").astype(int)), "date", "format='%Y%m%d'"),
    (lambda d: d.assign(code=d["code"].astype(str).str[:6]), "code", "exchange suffix"),
    (lambda d: d.iloc[:0], "empty", "date range"),
]


@pytest.mark.parametrize("mutate,column,fix", DATA_CASES, ids=[c[1] + str(i) for i, c in enumerate(DATA_CASES)])
def test_bad_daily_files_through_data_source_dir(tiny, tmp_path, mutate, column, fix):
    from quantsam.data.stage import run_data

    d = write_dir(tmp_path, tiny, mutate(tiny.daily.reset_index(drop=True)))
    cfg = compose(["data.source=dir", f"data.dir={d}"])
    with pytest.raises(DataError) as ei:
        run_data(cfg)
    msg = str(ei.value)
    assert column in msg and "Fix" in msg and fix in msg, msg


@pytest.mark.parametrize("content,what", [(b"", "empty (0 bytes"), (b"PAR1" + b"\x00" * 50, "not a readable parquet")])
def test_empty_or_truncated_table_names_the_file(tiny, tmp_path, content, what):
    from quantsam.data.stage import run_data

    d = write_dir(tmp_path, tiny)
    (d / "index_weights.parquet").write_bytes(content)
    with pytest.raises(DataError) as ei:
        run_data(compose(["data.source=dir", f"data.dir={d}"]))
    assert "index_weights.parquet" in str(ei.value) and what in str(ei.value) and "Fix" in str(ei.value)


def test_tidy_csv_keeps_codes_as_strings_and_parses_yyyymmdd(tiny, tmp_path):
    from quantsam.data.ingest import load_tidy

    df = tiny.daily.copy()
    df["date"] = df["date"].dt.strftime("%Y%m%d").astype(int)  # integer yyyymmdd, never 1970
    df.to_csv(tmp_path / "daily.csv", index=False)
    out = load_tidy(tmp_path / "daily.csv", preset="contract")
    assert out["date"].min() == tiny.daily["date"].min()
    assert set(out["code"].astype(str)) == set(tiny.daily["code"].astype(str))  # '000114.SZ' stays, never '114'
    assert any(c.startswith("00") for c in out["code"].astype(str))


def test_tidy_rejects_bad_rows_before_returning(tiny, tmp_path):
    from quantsam.data.ingest import load_tidy

    at(tiny.daily.reset_index(drop=True), "close", np.nan).to_parquet(tmp_path / "daily.parquet", index=False)
    with pytest.raises(DataError, match=r"column 'close'[\s\S]*Fix"):
        load_tidy(tmp_path, preset="contract")


def test_a_crash_mid_write_of_the_manifest_regenerates_instead_of_crashing(tmp_path):
    from quantsam.data.stage import run_data

    cfg = compose(["data.n_stocks=40", "data.start=2019-01-01", "data.end=2020-06-30", f"paths.data={tmp_path}"])
    ref = run_data(cfg)
    (ref.dir / "manifest.json").write_text("")  # what a crash in the middle of a non-atomic write would leave
    assert run_data(cfg) == ref  # redone, same market, no JSONDecodeError
    (ref.dir / "meta.json").write_text("{")
    assert run_data(cfg) == ref  # meta.json is informational: a broken one never decides anything


# ---- signal files (a standalone factor test) -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signal_env(tmp_path_factory):
    """A small market through the data stage, and a valid signal on it."""
    from quantsam.data.stage import run_data
    from quantsam.features.market import open_market

    tmp = tmp_path_factory.mktemp("sig")
    cfg = compose(["data.n_stocks=60", "data.start=2018-01-01", "data.end=2020-06-30", f"paths.data={tmp}/data",
                   f"paths.runs={tmp}/out", "tracking.enabled=false", "factor_test.start=2019-06-01",
                   "factor_test.end=2020-05-31"])
    market = open_market(run_data(cfg))
    a = pd.read_parquet(market.dir / "alpha.parquet")
    a = a[a["date"] >= "2019-06-01"].rename(columns={"alpha": "score"})
    return cfg, market, a.reset_index(drop=True), tmp


SIGNAL_CASES = [
    (lambda s: at(s, "score", np.inf), "+-inf", "finite numeric score"),
    (lambda s: at(s, "score", -np.inf), "+-inf", "finite numeric score"),
    (lambda s: pd.concat([s, s.iloc[[0]]]), "duplicate (date, code)", "one row per date and code"),
    (lambda s: s.assign(score=s["score"].astype(str)), "'score'", "finite numeric score"),
    (lambda s: at(s, "code", "999999.SH"), "codes not in the market", "same market data"),
    (lambda s: s.assign(score=1.0), "constant across names", "varies across names"),
    (lambda s: s.drop(columns=["score"]), "missing", "finite numeric score"),
]


@pytest.mark.parametrize("mutate,what,fix", SIGNAL_CASES, ids=[c[1] for c in SIGNAL_CASES])
def test_bad_signal_files(signal_env, tmp_path, mutate, what, fix):
    from quantsam.factor_test.stage import run_factor_test

    cfg, market, sig, _ = signal_env
    p = tmp_path / "signal.parquet"
    mutate(sig).to_parquet(p, index=False)
    with pytest.raises(DataError) as ei:
        run_factor_test(cfg, p, market)
    msg = str(ei.value)
    assert what in msg and fix in msg and ("signal" in msg), msg


def test_a_signal_with_timezone_aware_dates_is_read_on_the_exchange_calendar(signal_env, tmp_path):
    """Issue 31: a tz-aware signal got "rows on dates not in the market calendar (first: 2018-06-01)" for a date that
    is in it. Exchange-local midnights (stored in UTC) are those dates; stamps with a time of day name the fix."""
    from quantsam.factor_test.stage import run_factor_test

    cfg, market, sig, _ = signal_env
    naive, aware = tmp_path / "naive.parquet", tmp_path / "aware.parquet"
    sig.to_parquet(naive, index=False)
    sig.assign(date=sig["date"].dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC")).to_parquet(aware, index=False)
    assert run_factor_test(cfg, aware, market).summary["rank_ic_mean"] == pytest.approx(
        run_factor_test(cfg, naive, market).summary["rank_ic_mean"], abs=1e-12)
    sig.assign(date=sig["date"].dt.tz_localize("UTC") + pd.Timedelta(hours=7)).to_parquet(aware, index=False)
    with pytest.raises(DataError, match=rf"signal {aware}: column 'date' holds timezone-aware timestamps \(UTC\) "
                                        r"with times of day.*Fix"):
        run_factor_test(cfg, aware, market)


@pytest.mark.parametrize("content,what", [(b"", "empty (0 bytes"), (b"not a parquet file", "not a readable parquet")])
def test_empty_or_truncated_signal_file(signal_env, tmp_path, content, what):
    from quantsam.factor_test.stage import run_factor_test

    cfg, market, _, _ = signal_env
    p = tmp_path / "signal.parquet"
    p.write_bytes(content)
    with pytest.raises(DataError) as ei:
        run_factor_test(cfg, p, market)
    assert str(p) in str(ei.value) and what in str(ei.value) and "Fix" in str(ei.value)


def test_nan_scores_are_counted_not_silently_dropped(signal_env, tmp_path):
    from quantsam.factor_test.stage import run_factor_test

    cfg, market, sig, _ = signal_env
    s = sig.copy()
    s.loc[s.index[:25], "score"] = np.nan
    p = tmp_path / "signal.parquet"
    s.to_parquet(p, index=False)
    out = run_factor_test(cfg, p, market)
    drops = json.loads((out.out_dir / "summary.json").read_text())["drops"]
    assert drops["rows_nan_score"] == int(s["score"].isna().sum()) >= 25 and np.isfinite(out.summary["rank_ic_mean"])


def test_a_changed_signal_or_market_is_never_a_cache_hit(signal_env, tmp_path):
    from quantsam.data.stage import run_data
    from quantsam.factor_test.stage import run_factor_test
    from quantsam.features.market import open_market

    cfg, market, sig, tmp = signal_env
    p = tmp_path / "signal.parquet"
    sig.to_parquet(p, index=False)
    first = run_factor_test(cfg, p, market)
    assert run_factor_test(cfg, p, market).skipped  # same inputs: cached
    sig.assign(score=sig["score"] * -1).to_parquet(p, index=False)  # the signal changed in place
    flipped = run_factor_test(cfg, p, market)
    assert not flipped.skipped and flipped.summary["rank_ic_mean"] == pytest.approx(-first.summary["rank_ic_mean"])
    sig.to_parquet(p, index=False)
    other = compose([*[f"{k}" for k in ("data.n_stocks=60", "data.start=2018-01-01", "data.end=2020-06-30")],
                     f"paths.data={tmp}/data", f"paths.runs={tmp}/out", "data.signal_strength=0.25",
                     "tracking.enabled=false",
                     "factor_test.start=2019-06-01", "factor_test.end=2020-05-31"])
    m2 = open_market(run_data(other))  # another market (same codes and dates): its own result
    assert m2.fingerprint != market.fingerprint
    again = run_factor_test(other, p, m2)
    assert not again.skipped and again.out_dir != first.out_dir


def _no_room(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")  # what a full disk raises: no file named


def test_a_full_disk_under_paths_runs_names_the_folder_and_the_fix(signal_env, tmp_path, monkeypatch):
    """ENOSPC while a stage writes its folder under ``paths.runs`` (issue 31): the folder, the room left and the fix
    instead of a raw ``OSError [Errno 28]``; no half-written folder is left behind."""
    from quantsam.errors import DiskFullError
    from quantsam.factor_test.stage import run_factor_test

    cfg, market, sig, _ = signal_env
    cfg = cfg.copy()
    cfg.paths.runs = str(tmp_path / "out")  # its own results folder: nothing cached there by the other cases
    p = tmp_path / "signal.parquet"
    sig.to_parquet(p, index=False)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", _no_room)
    with pytest.raises(DiskFullError) as ei:
        run_factor_test(cfg, p, market)
    msg = str(ei.value)
    assert f"{tmp_path}/out/factor_test/" in msg and "MiB free there now" in msg and "Fix: free space" in msg, msg
    assert "paths.runs" in msg and ei.value.errno == errno.ENOSPC
    assert not list((tmp_path / "out" / "factor_test").glob(".*.tmp-*"))


def test_a_full_disk_in_an_atomic_write_names_the_file(tmp_path):
    from quantsam import stageio
    from quantsam.errors import DiskFullError

    target = tmp_path / "out" / "units" / "w00-daily-s0.json"
    with pytest.raises(DiskFullError, match=rf"{target}: no room to write it \(No space left on device; .*Fix: free"):
        stageio.atomic_write(target, _no_room)
    assert not list(target.parent.iterdir())  # no temporary left


# ---- checkpoints: safe loading ----------------------------------------------------------------------------------------
class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/quantsam-pwned",))


def test_a_planted_pickle_is_refused(tmp_path):
    import torch

    from quantsam.train import checkpoint

    p = tmp_path / "w00-daily-s0.pt"
    torch.save({"model": _Payload()}, p)
    Path("/tmp/quantsam-pwned").unlink(missing_ok=True)
    with pytest.raises(DataError) as ei:
        checkpoint.load(p)
    assert "refused to load" in str(ei.value) and "weights_only=True" in str(ei.value) and "delete it" in str(ei.value)
    assert not Path("/tmp/quantsam-pwned").exists()
    ok = {"model": {"w": torch.ones(2)}, "state": {"history": [{"epoch": 0, "loss": -0.1}], "best_score": -np.inf},
          "rng_cpu": torch.get_rng_state()}
    checkpoint.save_atomic(ok, p)
    assert checkpoint.load(p)["state"]["history"][0]["loss"] == -0.1  # what quantsam writes loads fine


def test_a_truncated_checkpoint_is_named_then_set_aside_and_its_unit_retrained(tmp_path, caplog):
    """A checkpoint cut short (kill -9 of a copy, a full disk; issue 31): ``load`` names the file and the fix instead of
    a raw ``OSError [Errno 22]``, and a rerun sets the file aside and trains the unit again from its first epoch."""
    import logging

    import torch

    from quantsam.data.stage import run_data
    from quantsam.features.market import open_market
    from quantsam.pipeline import run_pipeline
    from quantsam.train import checkpoint
    from quantsam.train.stage import feature_set, plan_training

    cfg = compose(["experiment=smoke", "data.n_stocks=60", "trainer.models=[daily]", "trainer.max_epochs=1",
                   *isolated(tmp_path, mlflow="off")])
    market = open_market(run_data(cfg))
    plan = plan_training(cfg, market, feature_set(cfg, market))
    unit = plan.units[0]
    p = plan.work / "checkpoints" / f"{unit.tag}.pt"
    p.parent.mkdir(parents=True)
    torch.save({"model": {"w": torch.randn(1000)}, "state": {"epoch": 1, "history": []}}, p)
    p.write_bytes(p.read_bytes()[:-10])  # what torch's zip reader fails on with OSError [Errno 22]
    with pytest.raises(DataError) as ei:
        checkpoint.load(p)
    assert str(p) in str(ei.value) and "Fix: delete it" in str(ei.value)
    with caplog.at_level(logging.WARNING, logger="quantsam.train.checkpoint"):
        run_pipeline(cfg, stages=["train"])
    aside = list(p.parent.glob(f"{unit.tag}.pt.damaged-*"))
    assert len(aside) == 1 and not p.exists()
    assert f"set aside as {aside[0]}" in caplog.text and str(p) in caplog.text
    hist = json.loads((plan.work / "history" / f"{unit.tag}.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == list(range(len(hist))) and hist  # trained again from epoch 0


# ---- side tables: checked at the door like the bars (issue 31) -----------------------------------------------------
def _weights_scaled_on_first_date(w: pd.DataFrame, k: float) -> pd.DataFrame:
    return w.assign(weight=np.where(w["date"] == w["date"].min(), w["weight"] * k, w["weight"]))


def _end_before_start(m: pd.DataFrame) -> pd.DataFrame:
    return at(m, "end_date", m["start_date"].iloc[5] - pd.Timedelta(days=30))


SIDE_CASES = [
    # (table, mutation, what the message says, a piece of the fix)
    ("index_weights", lambda t: at(t, "weight", np.nan), "column 'weight': 1 NaN/inf weight", "benchmark return 0"),
    ("index_weights", lambda t: at(t, "weight", -0.01), "column 'weight': 1 negative weight", "weights are >= 0"),
    ("index_weights", lambda t: _weights_scaled_on_first_date(t, 0.6), "more than 5% away from 1 on 1 date",
     "re-export those dates complete"),
    ("index_weights", lambda t: t.assign(weight=t["weight"] * 0.5), "neither 1 nor 100", "weight of every constituent"),
    ("index_weights", lambda t: t.assign(date=t["date"] + pd.Timedelta(hours=16)), "is a trading day",
     "not shifted by a time zone"),
    ("index_weights", lambda t: pd.concat([t, t.iloc[[3]]]), "duplicate row", "drop_duplicates"),
    ("index_members", lambda t: at(t, "start_date", pd.NaT), "column 'start_date': 1 interval(s) have no start",
     "the date it joined"),
    ("index_members", _end_before_start, "column 'end_date': 1 interval(s) end before they start", "correct (or swap)"),
    ("industry", lambda t: pd.concat([t, t.iloc[[2]].assign(industry="Other")]), "more than one label",
     "one row per code"),
]


@pytest.mark.parametrize("table,mutate,what,fix", SIDE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SIDE_CASES)])
def test_bad_side_tables_through_data_source_dir(tiny, tmp_path, table, mutate, what, fix):
    """A side table that would make a result wrong (a NaN weight zeroes that day's benchmark return) is an error at
    the door naming the file, the column and the fix — as the daily bars are."""
    from quantsam.data.stage import run_data

    d = write_dir(tmp_path, tiny)
    mutate(getattr(tiny, table).reset_index(drop=True)).to_parquet(d / f"{table}.parquet", index=False)
    with pytest.raises(DataError) as ei:
        run_data(compose(["data.source=dir", f"data.dir={d}"]))
    msg = str(ei.value)
    assert f"{d / table}.parquet" in msg and what in msg and fix in msg and "Fix" in msg, msg


def shared_real_dir(tmp_path: Path, m, weights: pd.DataFrame | None = None,
                    industry: pd.DataFrame | None = None) -> Path:
    """``m`` as a tidy export in the ``shared_real`` preset's layout (prices in fen, side tables beside the bars)."""
    d = tmp_path / "export"
    d.mkdir()
    fen = {c: f"{c}_fen" for c in ("open", "high", "low", "close", "preclose")}
    daily = m.daily.rename(columns=fen)
    daily[list(fen.values())] *= 100
    daily.to_parquet(d / "daily.parquet", index=False)
    m.index_members.to_parquet(d / "index_members.parquet", index=False)
    (m.index_weights if weights is None else weights).to_parquet(d / "index_weights.parquet", index=False)
    ind = m.industry if industry is None else industry
    ind.rename(columns={"industry": "industry_tushare"}).to_parquet(d / "industry.parquet", index=False)
    return d


def test_side_tables_are_counted_in_the_ingest_report(tiny, tmp_path):
    """Percent weights, a name without an industry label, weights on a day the bars lack: counted and noted in the
    ingest report, not errors (the run is right with them)."""
    from quantsam.data.ingest.market import load_source

    w = tiny.index_weights.assign(weight=tiny.index_weights["weight"] * 100)
    extra = w[w["date"] == w["date"].max()].assign(date=w["date"].max() + pd.Timedelta(days=1))  # a Saturday or so
    ind = at(tiny.industry.reset_index(drop=True), "industry", None, row=1)
    d = shared_real_dir(tmp_path, tiny, weights=pd.concat([w, extra]), industry=ind)
    _, rep = load_source("tidy", d, preset="shared_real")
    side = rep["side_tables"]
    assert side["index_weights"]["sum_000300.SH"]["unit"] == "percent"
    assert side["index_weights"]["rows_off_calendar"] == len(extra) and side["industry"]["missing_labels"] == 1
    assert any("names without an industry label" in n for n in rep["notes"]), rep["notes"]
    assert any(f"{len(extra)} index-weight rows on dates that are not trading days" in n for n in rep["notes"])


def test_a_nan_index_weight_in_a_tidy_export_stops_the_ingest(tiny, tmp_path):
    """Issue 31's case: one NaN weight per day on some dates of an export — an error naming the export's file,
    never a backtest whose benchmark return is 0 on those days."""
    from quantsam.data.ingest.market import load_source

    w = tiny.index_weights.copy()
    first_of_day = w[w["index_code"] == "000905.SH"].groupby("date").head(1).index[:40]
    w.loc[first_of_day, "weight"] = np.nan
    d = shared_real_dir(tmp_path, tiny, weights=w)
    with pytest.raises(DataError, match=rf"{d}/index_weights.parquet: column 'weight': 40 NaN/inf weight\(s\) on 40 "
                                        r"date\(s\) \(first: index_code=000905.SH.*Fix: fill them"):
        load_source("tidy", d, preset="shared_real")


def test_tidy_carries_float_shares_forward_split_adjusted(tiny, tmp_path):
    """Float shares missing after some day are carried forward scaled by the adj_factor change (a 2-for-1 split
    doubles both), up to ``ffill_float_shares_days``, and counted."""
    from quantsam.data.ingest import load_tidy

    df = tiny.daily.copy().sort_values(["code", "date"]).reset_index(drop=True)
    code = df["code"].iloc[0]
    rows = df.index[df["code"] == code]
    split_at = rows[15]
    df.loc[rows[11]:rows[-1], "float_shares"] = np.nan
    df.loc[split_at:rows[-1], "adj_factor"] *= 2.0
    df.to_parquet(tmp_path / "daily.parquet", index=False)
    out = load_tidy(tmp_path, preset="contract", ffill_float_shares_days=20).set_index(["code", "date"])
    d = df.set_index(["code", "date"])
    fs = out.loc[code, "float_shares"]
    base = d.loc[code, "float_shares"].iloc[10]
    dates = d.loc[code].index
    adj = d.loc[code, "adj_factor"]
    expected = base * adj / adj.iloc[10]  # written out per row: what the share count does under the adj_factor
    assert fs.loc[dates[12]] == pytest.approx(expected.iloc[12], rel=1e-12)
    assert fs.loc[dates[16]] == pytest.approx(expected.iloc[16], rel=1e-12)
    assert fs.loc[dates[16]] > 1.9 * base  # the split doubled it
    assert fs.loc[dates[10 + 20]] == pytest.approx(expected.iloc[30], rel=1e-12)
    assert np.isnan(fs.loc[dates[10 + 21]])  # the limit holds
    rep = out.attrs["ingest"]
    assert rep["float_shares_carried_forward"] == 20 and rep["float_shares_missing"] == len(rows) - 31


# ---- tidy doors that used to be silent or raw (issue 21) --------------------------------------------------------------
def test_tidy_parquet_with_yyyymmdd_integers_and_a_start_date(tiny, tmp_path):
    """Integer yyyymmdd dates in a parquet file with data.start set: parsed, then filtered (no raw Arrow error)."""
    from quantsam.data.ingest import load_tidy

    df = tiny.daily.copy()
    df["date"] = df["date"].dt.strftime("%Y%m%d").astype(int)
    df.to_parquet(tmp_path / "daily.parquet", index=False)
    out = load_tidy(tmp_path, preset="contract", start="2019-06-01")
    assert out["date"].min() >= pd.Timestamp("2019-06-01") and out["date"].max() == tiny.daily["date"].max()


TZ_DATES = [  # (how the export's naive dates became timezone-aware, read back as the same dates)
    ("localized-utc", lambda d: d.dt.tz_localize("UTC")),
    ("shanghai-stored-as-utc", lambda d: d.dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC")),
    ("tokyo", lambda d: d.dt.tz_localize("Asia/Tokyo")),
]


@pytest.mark.parametrize("make", [c[1] for c in TZ_DATES], ids=[c[0] for c in TZ_DATES])
def test_tidy_timezone_aware_dates_are_read_as_exchange_dates(tiny, tmp_path, make, caplog):
    """Timezone-aware dates in a tidy export (issue 31: a raw pandas TypeError with data.start) are the exchange-local
    dates they stand for, said in the log."""
    import logging

    from quantsam.data.ingest import load_tidy

    tiny.daily.assign(date=make(tiny.daily["date"])).to_parquet(tmp_path / "daily.parquet", index=False)
    with caplog.at_level(logging.WARNING, logger="quantsam.data.calendar"):
        out = load_tidy(tmp_path, preset="contract", start="2019-06-03")
    ref = tiny.daily[tiny.daily["date"] >= "2019-06-03"]
    assert out["date"].dt.tz is None and (out["date"].to_numpy() == ref["date"].to_numpy()).all()
    assert "column 'date' holds timezone-aware timestamps" in caplog.text and "daily.parquet" in caplog.text


def test_tidy_timezone_aware_times_of_day_name_the_file_and_the_fix(tiny, tmp_path):
    from quantsam.data.ingest import load_tidy

    close_utc = tiny.daily["date"].dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC") + pd.Timedelta(hours=15)
    tiny.daily.assign(date=close_utc).to_parquet(tmp_path / "daily.parquet", index=False)
    with pytest.raises(DataError, match=rf"{tmp_path}/daily.parquet: column 'date' holds timezone-aware timestamps "
                                        r"\(UTC\) with times of day.*Fix: .*tz_convert\('Asia/Shanghai'\)"):
        load_tidy(tmp_path, preset="contract", start="2019-06-03")


def test_tidy_missing_column_is_named_with_the_available_ones(tiny, tmp_path):
    from quantsam.data.ingest import load_tidy

    tiny.daily.to_parquet(tmp_path / "daily.parquet", index=False)
    with pytest.raises(DataError, match=r"columns \['vol'\].*not found; available: \[.*'volume'.*mapping="):
        load_tidy(tmp_path, preset="contract", mapping={"volume": "vol"})


def test_tidy_folder_with_csv_files_and_side_tables_beside_a_csv_path(tiny, tmp_path):
    """A folder holding daily.csv is read (not 'daily.parquet: file not found'); a CSV data.path takes the index
    members / weights / industry files beside it, parquet or CSV; a missing one is listed, not silently empty."""
    from quantsam.data.ingest import load_tidy
    from quantsam.data.ingest.tidy import load_tables

    d = tmp_path / "csv"
    d.mkdir()
    tiny.daily.to_csv(d / "daily.csv", index=False)
    tiny.index_members.to_csv(d / "index_members.csv", index=False)
    tiny.index_weights.to_parquet(d / "index_weights.parquet", index=False)
    assert len(load_tidy(d, preset="contract")) == len(tiny.daily)
    t = load_tables(d / "daily.csv", "shared_real")
    assert len(t["index_members"]) == len(tiny.index_members) and len(t["index_weights"]) == len(tiny.index_weights)
    assert t["missing"] == ["industry.parquet", "index_daily.parquet"] and t["industry"].empty


def test_truncated_side_table_names_the_file(tiny, tmp_path):
    from quantsam.data.ingest.tidy import load_tables

    d = write_dir(tmp_path, tiny)
    raw = (d / "index_members.parquet").read_bytes()
    (d / "index_members.parquet").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"index_members.parquet: not a readable parquet file.*Fix"):
        load_tables(d, "shared_real")


@pytest.mark.parametrize("args,needle", [
    (["check", "paths.runs={tmp}/a_file/out"], "paths.runs=.*is a file, not a folder. Fix: point paths.runs at a folder"),
    (["plan", "experiment=smoke", "seed=a,b"], r"seed=a,b: \['a', 'b'\] are not seeds. Fix: integers >= 0"),
    (["check", "trainer.device=cuda:7"], r"trainer.device=cuda:7: (CUDA is not available here|this machine has \d+ CUDA)"),
    (["tune", "optimizer=gsam", "hydra.sweeper.n_trials=0"], r"hydra.sweeper.n_trials=0: an integer >= 1"),
    (["tune", "optimizer=gsam", "optimizer.alpha=interval(0.3, 0.1)"], r"empty search range.*Fix: interval"),
    (["tune", "optimizer=gsam", "optimizer.rho=tag(log, interval(0, 0.5))"], r"log-scale range needs a lower bound > 0"),
    (["tune", "optimizer=sam", "hydra.sweeper.params.optimizer.rho=tag(log, interval(0.01, 0.3))"],
     r"written on the searched key itself. Fix: optimizer.rho='tag\(log, interval\(0.01, 0.3\)\)'"),
    (["train", "--multirun", "optimizer=adamw,sam", "paths.root={tmp}/a_file/root"],
     "paths.root=.*is a file, not a folder. Fix: point paths.root at a folder"),
    pytest.param(["check", "paths.runs={tmp}/locked/out"], "paths.runs=.*is not writable by this user. Fix: a writable",
                 marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")),
], ids=["runs-under-a-file", "plan-bad-seeds", "check-missing-device", "tune-no-trials", "tune-empty-range", "tune-log-zero",
        "tune-hydra-sweeper-params", "sweep-root-under-a-file", "runs-locked"])
def test_command_line_doors_fail_clearly(tmp_path, args, needle):
    """Bad paths, seeds and search spaces: a non-zero exit with the key and the fix, before any work (issues 21, 31);
    a run folder that cannot be made is the message alone (no AssertionError, no pages of Hydra frames)."""
    import re

    (tmp_path / "a_file").write_text("")
    (tmp_path / "locked").mkdir(mode=0o555)
    proc = quantsam(*[a.format(tmp=tmp_path) for a in args], f"paths.data={tmp_path}/data", timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and re.search(needle, out), proc.stderr[-2000:]
    assert not (tmp_path / "data").exists()  # nothing was generated
    if "not a folder" in needle or "not writable" in needle:
        assert "Traceback" not in out and "AssertionError" not in out and len(out.splitlines()) < 10, out
