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
