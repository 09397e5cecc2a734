"""A tiny finished study (two optimizers, smoke experiment): report sections and figures, MLflow parent/children,
and the notebook rebuilding the main table from MLflow."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli import isolated, quantsam

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow  # a real multirun (two fits, every stage, the report): minutes on 2 cores


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    proc = quantsam("pipeline", "--multirun", "experiment=smoke", "optimizer=adamw,gsam", "report.landscape_grid=5",
                    "report.landscape_days=6", "report.landscape_names=60", "report.power_iters=5", *isolated(tmp),
                    f"hydra.sweep.dir={tmp}/sweep")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp


def test_report_has_every_section_and_figure(study):
    from matplotlib.image import imread

    from quantsam.report.render import SECTIONS

    rep = study / "sweep" / "report"
    page = (rep / "report.html").read_text()
    for s in SECTIONS:
        assert f"<h2 id='{s.lower().replace(' ', '-')}'>{s}</h2>" in page, s
    assert "src='http" not in page and page.count("data:image/png;base64,") >= 9  # self-contained
    for name in ("ic", "layers", "convergence", "cost", "nav_csi300", "nav_csi500", "nav_csi1000", "landscape"):
        img = imread(rep / "figures" / f"{name}.png")
        assert img.shape[0] > 200 and img.shape[1] > 500 and img.std() > 0.01, name
    md = (rep / "report.md").read_text()
    assert "| RankIC mean |" in md and "| top Hessian eigenvalue |" in md.replace(" | ", " | ")
    assert "Wilcoxon p" in md


def test_mlflow_parent_children_and_metrics(study):
    from mlflow import MlflowClient

    c = MlflowClient(f"sqlite:///{study}/mlruns.db")
    exp = c.get_experiment_by_name("quantsam")
    runs = c.search_runs([exp.experiment_id])
    parent = [r for r in runs if r.data.tags.get("kind") == "sweep"]
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
    assert parent[0].info.status == "FINISHED" and len(kids) == 2
    for r in kids:
        assert r.info.status == "FINISHED"
        for k in ("factor/rank_ic_mean", "bt/csi300/excess_ann", "bt/csi500/info_ratio", "bt/csi1000/turnover",
                  "summary/test_rank_ic_daily", "summary/factor_rank_ic_weekly", "summary/csi500_excess_ann",
                  "summary/csi1000_ir", "summary/grad_evals"):
            assert k in r.data.metrics, k
        assert r.data.metrics["summary/factor_rank_ic_weekly"] == r.data.metrics["factor/rank_ic_mean"]
    pm = parent[0].data.metrics  # the side-by-side table as the parent's own metrics
    for arm in ("adamw", "gsam"):
        for row in ("test_rankic_daily", "factor_rankic_weekly", "top_excess", "csi300_excess", "csi500_ir", "grad_evals"):
            assert f"compare/{arm}/{row}" in pm, (arm, row)
    assert pm["compare/gsam/grad_evals"] > pm["compare/adamw/grad_evals"]
    arts = {a.path for a in c.list_artifacts(parent[0].info.run_id, "report")}
    assert "report/report.html" in arts and "report/report.md" in arts


def test_notebook_rebuilds_the_main_table(study, tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTSAM_TRACKING_URI", f"sqlite:///{study}/mlruns.db")
    monkeypatch.setenv("QUANTSAM_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runpy.run_path(str(ROOT / "notebooks" / "compare_optimizers.py"), run_name="__main__")
    table = pd.read_csv(tmp_path / "main_table.csv", index_col=0)
    report = pd.read_parquet(study / "sweep" / "report" / "tables" / "factor_numeric.parquet")
    assert list(table.columns) == ["adamw", "gsam"]
    assert np.allclose(table.loc["RankIC mean"].to_numpy(), report.loc["RankIC mean"].to_numpy(dtype=float))
    assert (tmp_path / "comparison.png").stat().st_size > 1000


def test_report_can_be_rebuilt_by_command(study):
    out = quantsam("report", f"report.sweep_dir={study}/sweep", "report.landscape=false",
                   f"tracking.uri=sqlite:///{study}/mlruns.db", timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert re.search(r"report: .*report\.html", out.stdout)
    assert os.path.exists(study / "sweep" / "report" / "report.html")


def test_standalone_factor_test_of_a_study_run_uses_its_setup_and_its_run(study):
    """`make factor-test RUN=<a job's training dir>` as the README gives it, with no experiment on the command line:
    the run's own market (its config.yaml), its cached signal and factor test found again ("unchanged"), and no new
    MLflow run beside the sweep's."""
    from mlflow import MlflowClient

    from quantsam.jobresult import JobResult

    job = next(j for j in JobResult.all_in(study / "sweep") if j.optimizer == "adamw")
    c = MlflowClient(f"sqlite:///{study}/mlruns.db")
    exp = c.get_experiment_by_name("quantsam").experiment_id
    before = len(c.search_runs([exp]))
    proc = quantsam("factor_test", f"factor_test.input={job.work_dir}", *isolated(study),
                    f"hydra.run.dir={study}/standalone", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"unchanged: {job.factor_dir}" in proc.stdout
    assert "using the market the input was made on" in proc.stdout + proc.stderr
    assert len(c.search_runs([exp])) == before


def test_compare_runs_finds_equal_and_changed_tables(study, tmp_path):
    """`python scripts/compare_runs.py <before> <after>` as the README gives it: a sweep against itself is equal
    table by table; a copy of one job whose signal lost a row is reported DIFFERENT (exit 1)."""
    import json
    import shutil

    from quantsam.jobresult import JobResult

    same = subprocess.run([sys.executable, "scripts/compare_runs.py", str(study / "sweep"), str(study / "sweep")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert same.returncode == 0 and "tables equal exactly (2 job(s))" in same.stdout, same.stdout[-2000:]
    job_dir = next(p.parent for p in sorted((study / "sweep").glob("*/result.json")))
    job = JobResult.read(job_dir / "result.json")
    changed = tmp_path / "signal"
    shutil.copytree(job.signal_dir, changed)
    sig = pd.read_parquet(changed / "signal.parquet")
    sig.iloc[1:].to_parquet(changed / "signal.parquet", index=False)
    (tmp_path / "job").mkdir()
    doc = json.loads((job_dir / "result.json").read_text())
    doc["signal"] = str(changed / "signal.parquet")
    (tmp_path / "job" / "result.json").write_text(json.dumps(doc))
    diff = subprocess.run([sys.executable, "scripts/compare_runs.py", str(job_dir), str(tmp_path / "job")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert diff.returncode == 1 and "signal/signal: DIFFERENT" in diff.stdout, diff.stdout[-2000:]


def test_real_results_and_portfolio_compare_scripts(study, tmp_path):
    """The two result scripts the README documents, on this study's sweep: real_results.py over sweep folders
    (one folder holding both arms here), and portfolio_compare.py's selection-then-report mode on its signal."""
    import json

    from tests.cli import ROOT

    out = tmp_path / "results"
    p = subprocess.run([sys.executable, "scripts/real_results.py", str(study / "sweep"), "--name", "t",
                        "--experiment", "smoke", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    doc = json.loads((out / "summary.json").read_text())
    assert set(doc["arms"]) == {"adamw", "gsam"} and (out / "headline.md").exists()
    # the fits' summed wall seconds, named as such (they were once labelled CPU seconds)
    assert doc["arms"]["gsam"]["fits_wall_s"] > 0 and "train_cpu_s" not in doc["arms"]["gsam"]
    answers = (out / "answers.md").read_text().splitlines()  # the README's per-arm table: a row per arm
    assert sorted(r.split(" | ")[0] for r in answers[2:]) == ["| adamw", "| gsam"]
    assert "(baseline)" in next(r for r in answers if r.startswith("| adamw |"))
    # the source's claim about GSAM is checked by name (ASAM is not in this study: its claim gives no rows)
    answers = doc["source_claims"]["answers"]
    assert len(answers) == 1 and answers[0].startswith("GSAM is the best optimizer over the whole test period? gsam")
    assert {m["arm"] for m in doc["source_claims"]["metrics"]} == {"gsam"}
    assert "## The source's claims" in (out / "report.md").read_text()
    cmp_out = tmp_path / "cmp"
    p = subprocess.run([sys.executable, "scripts/portfolio_compare.py", str(study / "sweep"), "--experiment", "smoke",
                        "--universes", "csi500", "--portfolios", "top_n,topk_dropout", "--grid", "cost_aversion=1,4",
                        "--select", "2018-06-01:2018-07-15", "--end", "2018-09-30", "--out", str(cmp_out),
                        *[f"--override={o}" for o in isolated(study)]],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    doc = json.loads((cmp_out / "summary.json").read_text())
    assert doc["chosen"] in ("cost_aversion=1", "cost_aversion=4")
    names = {r["portfolio"] for r in doc["report"]}
    assert names == {f"cost_aware {doc['chosen']}", "top_n", "topk_dropout"}
    assert "Chosen:" in (cmp_out / "table.md").read_text()
    # --against: the same portfolio on the other arm's signal and the paired weekly-excess test
    pair_out = tmp_path / "pair"
    p = subprocess.run([sys.executable, "scripts/portfolio_compare.py", str(study / "sweep"), "--arm", "gsam",
                        "--against", str(study / "sweep"), "--against-arm", "adamw", "--experiment", "smoke",
                        "--universes", "csi500", "--portfolios", "top_n,topk_dropout", "--pairs", "top_n:topk_dropout",
                        "--start", "2018-06-01", "--end",
                        "2018-09-30", "--out", str(pair_out), *[f"--override={o}" for o in isolated(study)]],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    doc = json.loads((pair_out / "summary.json").read_text())
    assert [r["portfolio"] for r in doc["paired_portfolios"]] == ["top_n - topk_dropout"]
    row = next(r for r in doc["paired"] if r["portfolio"] == "top_n")
    assert len(doc["paired"]) == 2 and row["index"] == "csi500" and doc["against"] != doc["signal"]
    # independently: the mean weekly difference is the summed daily difference over the weeks, x 52 a year
    from quantsam.config import compose

    cfg = compose(["experiment=smoke", *isolated(study)])
    daily = {}
    for sig in (doc["signal"], doc["against"]):
        from quantsam.backtest.stage import run_backtest
        from quantsam.data.stage import run_data
        from quantsam.features.market import open_market

        c = compose(["experiment=smoke", "portfolio=top_n", "backtest.start=2018-06-01", "backtest.end=2018-09-30",
                     "backtest.universes=[csi500]", "backtest.workers=1", *isolated(study)])
        o = run_backtest(c, Path(sig), open_market(run_data(cfg)))
        assert o.skipped == ["csi500"]  # the script's backtests, from the cache
        daily[sig] = pd.read_parquet(o.out_dirs["csi500"] / "daily.parquet")["excess"]
    d = daily[doc["signal"]] - daily[doc["against"]]
    weeks = pd.DatetimeIndex(d.index).to_period("W-FRI").nunique()
    assert row["weeks"] == weeks and abs(row["difference %/yr"] - 52 * d.sum() / weeks) < 1e-12
