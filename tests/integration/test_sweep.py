"""Hydra multirun sweeps with the joblib launcher: parent + child runs, failures isolated, finished work reused and a
rerun sweep getting its own parent with all its children."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import isolated, quantsam


def sweep(tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    return quantsam("train", "--multirun", "experiment=smoke", "launcher=joblib", *isolated(tmp),
                    f"hydra.sweep.dir={tmp}/sweep", *extra)


def runs(tmp: Path):
    from mlflow import MlflowClient

    c = MlflowClient(f"sqlite:///{tmp}/mlruns.db")
    exp = c.get_experiment_by_name("quantsam")
    return c, c.search_runs([exp.experiment_id])


@pytest.fixture(scope="module")
def two_job_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    return tmp, sweep(tmp, "optimizer=adamw,wsam")


def test_two_jobs_finish_under_one_parent(two_job_sweep):
    tmp, proc = two_job_sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    c, rs = runs(tmp)
    parents = [r for r in rs if r.data.tags.get("kind") == "sweep"]
    children = [r for r in rs if r.data.tags.get("kind") != "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.info.run_name for r in children) == ["adamw-all-s0", "wsam-all-s0"]
    for r in children:
        assert r.info.status == "FINISHED"
        assert r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        for key in ("daily/valid/rank_ic", "weekly/train/loss"):
            assert len(c.get_metric_history(r.info.run_id, key)) == 2  # 2 epochs each: nothing lost
        assert "test/rank_ic_mean" in r.data.metrics
    assert {r.data.tags["hydra_job_num"] for r in children} == {"0", "1"}


def test_rerun_reuses_finished_work_under_a_new_parent(two_job_sweep):
    tmp, _ = two_job_sweep
    _, before = runs(tmp)
    old_parent = next(r for r in before if r.data.tags.get("kind") == "sweep").info.run_id
    seen = {p: len(p.read_text()) for p in (tmp / "sweep").glob("*/*.log")}  # job logs are appended to
    proc = sweep(tmp, "optimizer=adamw,wsam")
    assert proc.returncode == 0
    logs = "".join(p.read_text()[seen.get(p, 0):] for p in (tmp / "sweep").glob("*/*.log"))
    assert logs.count("skipping (+rerun=true forces)") >= 2 and "grad evals," not in logs  # nothing retrained
    _, rs = runs(tmp)
    parents = [r for r in rs if r.data.tags.get("kind") == "sweep"]
    new_parent = next(r for r in parents if r.info.run_id != old_parent)
    assert len(parents) == 2 and new_parent.info.status == "FINISHED"
    kids = [r for r in rs if r.data.tags.get("mlflow.parentRunId") == new_parent.info.run_id]
    assert sorted(r.info.run_name for r in kids) == ["adamw-all-s0", "wsam-all-s0"]
    originals = {r.info.run_id for r in rs if r.data.tags.get("mlflow.parentRunId") == old_parent}
    for r in kids:  # cache hits: the original's metrics, pointing at it
        assert r.info.status == "FINISHED" and r.data.tags["cached_from"] in originals
        assert "test/rank_ic_mean" in r.data.metrics
    # the comparison view (its filter, as MLflow's search applies it) shows each job once: the rerun's copies
    from quantsam.tracking.mlflow_run import SUPERSEDED_TAG, WORK_TAGS, comparison_view

    assert all(k in r.data.tags for r in kids for k in WORK_TAGS)  # the tags retire_superseded groups runs by

    c, _ = runs(tmp)
    shown = c.search_runs([new_parent.info.experiment_id], comparison_view()["searchFilter"])
    assert sorted(r.info.run_id for r in shown if r.data.tags.get("kind") == "train") == \
        sorted(r.info.run_id for r in kids)
    for r in rs:
        if r.info.run_id in originals:
            assert r.data.tags[SUPERSEDED_TAG] == next(k.info.run_id for k in kids
                                                      if k.data.tags["cached_from"] == r.info.run_id)


def test_a_failing_job_does_not_stop_the_others(tmp_path):
    # test_start in 2016 leaves no training data: that job raises; the other one must still finish
    proc = sweep(tmp_path, "optimizer=sam", "trainer.test_start=2016-02-01,2018-06-01")
    assert proc.returncode != 0
    assert "1 sweep job(s) failed" in proc.stderr
    _, rs = runs(tmp_path)
    children = [r for r in rs if r.data.tags.get("kind") != "sweep"]
    assert [r.info.status for r in children] == ["FINISHED"]
    assert (tmp_path / "sweep" / "failed_jobs" / "0.txt").read_text().count("test_start") >= 1
