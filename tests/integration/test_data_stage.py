"""The data stage writes the parquet layout once and reuses it while its key (generator version + parameters) matches."""

from __future__ import annotations

import json

import pandas as pd

from quantsam.config import compose
from quantsam.data.contract import validate_daily
from quantsam.data.io import load_market
from quantsam.data.stage import run_data


def test_writes_layout_then_reuses_it(tmp_path):
    cfg = compose(["data.n_stocks=40", "data.start=2019-01-01", "data.end=2020-06-30", f"paths.data={tmp_path}"])
    ref = run_data(cfg)
    d = ref.dir
    assert {p.name for p in d.iterdir()} >= {"daily.parquet", "index_members.parquet", "index_weights.parquet",
                                               "industry.parquet", "alpha.parquet", "meta.json", "manifest.json"}
    m = load_market(d)
    validate_daily(m.daily)
    assert m.alpha is not None and m.meta["fingerprint"] == ref.fingerprint
    stamp = (d / "daily.parquet").stat().st_mtime_ns
    assert run_data(cfg) == ref and (d / "daily.parquet").stat().st_mtime_ns == stamp  # cache hit
    man = json.loads((d / "manifest.json").read_text())
    man["key"] = "written-by-an-older-generator"  # another key: regenerate
    (d / "manifest.json").write_text(json.dumps(man))
    assert run_data(cfg) == ref
    assert (d / "daily.parquet").stat().st_mtime_ns != stamp
    pd.testing.assert_frame_equal(load_market(d).daily, m.daily)  # same seed, same market


def test_parallel_jobs_share_one_generation(tmp_path):
    """Two processes asking for the same missing market: one generates under the lock, the other reuses it."""
    import subprocess
    import sys

    code = ("from quantsam.config import compose; from quantsam.data.stage import run_data; "
            f"print(run_data(compose(['data.n_stocks=40', 'data.start=2019-01-01', 'data.end=2020-06-30', "
            f"'paths.data={tmp_path}'])))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert outs[0][0] == outs[1][0]
    assert not list(tmp_path.glob("synthetic/.*tmp*")) and not list(tmp_path.glob("synthetic/*/.*tmp*"))


def _edit_one_close_same_size(path):
    """Change one day's volume in a parquet file (a valid bar still), rewriting until the file keeps its size."""
    df = pd.read_parquet(path)
    size = path.stat().st_size
    for bump in (100, 200, 300, 500, 700, 1100, 1300, 1700, 1900, 2300):
        e = df.copy()
        e.loc[e.index[10], "volume"] = e["volume"].iloc[10] + bump
        e.to_parquet(path, index=False)
        if path.stat().st_size == size:
            return e
    raise AssertionError("could not keep the size")


def test_an_edit_that_keeps_the_size_is_not_served(tmp_path, caplog):
    """The done rule checks each output's sha256, not only its size: one volume edited in the synthetic
    market's own dir regenerates it; in a data.source=dir copy it gives a new fingerprint (so every later stage
    recomputes) — issue 21."""
    import shutil

    cfg = compose(["data.n_stocks=40", "data.start=2019-01-01", "data.end=2020-06-30", f"paths.data={tmp_path}"])
    ref = run_data(cfg)
    _edit_one_close_same_size(ref.dir / "daily.parquet")
    with caplog.at_level("WARNING"):
        again = run_data(cfg)
    assert "changed since it was written" in caplog.text
    assert again == ref  # regenerated: the same market as before the edit
    copy = tmp_path / "copy"
    shutil.copytree(ref.dir, copy)
    dcfg = compose(["data.source=dir", f"data.dir={copy}", f"paths.data={tmp_path}"])
    assert run_data(dcfg).fingerprint == ref.fingerprint
    _edit_one_close_same_size(copy / "daily.parquet")
    assert run_data(dcfg).fingerprint != ref.fingerprint


def test_a_result_of_changed_code_is_served_with_a_warning(tmp_path, caplog):
    from quantsam import stageio

    f = tmp_path / "out.json"
    f.write_text("{}")
    stageio.write_manifest(tmp_path / "manifest.json", "signal", "k", [f], code="old-code")
    with caplog.at_level("WARNING"):
        assert stageio.is_done(tmp_path / "manifest.json", "k", code="new-code")
    assert "computed by code that has changed since" in caplog.text and "+rerun=true" in caplog.text
    assert stageio.is_done(tmp_path / "manifest.json", "k", code="old-code")
    assert stageio.code_version("signals") != stageio.code_version("train")
