"""``make mlflow-ui``'s first line (``python -m quantsam.tracking.ui``): the link to the comparison view, written as
the Makefile runs it, on a store without the experiment, and on one made before the view existed (it gets the tag)."""

from __future__ import annotations

import json
import subprocess
import sys

from mlflow import MlflowClient


def test_link_names_the_view_and_tags_an_older_experiment(tmp_path):
    from quantsam.tracking.mlflow_run import VIEW_KEY, VIEW_TAG, comparison_view

    uri = f"sqlite:///{tmp_path}/mlruns.db"
    run = lambda *a: subprocess.run([sys.executable, "-m", "quantsam.tracking.ui", uri, "5077", *a],  # noqa: E731
                                    capture_output=True, text=True, check=True).stdout
    assert "no runs yet" in run()
    c = MlflowClient(uri)
    assert "no runs yet" in run() and "no experiment 'quantsam' yet" in run("quantsam")
    exp_id = c.create_experiment("quantsam")  # as an earlier quantsam made it: no view tag
    assert "no runs yet" in run()  # the Makefile's call lists the experiments that hold runs
    out = run("quantsam")
    assert f"http://127.0.0.1:5077/#/experiments/{exp_id}/runs?workflowType=machine_learning" \
           f"&viewStateShareKey={VIEW_KEY}" in out
    view = json.loads(c.get_experiment(exp_id).tags[VIEW_TAG])
    assert view == comparison_view() and "metrics.`summary/test_rank_ic_daily`" in view["selectedColumns"]
    assert view["groupBy"]["groupByKeys"] == [{"mode": "param", "groupByData": "optimizer.name"}]


def test_older_runs_of_one_work_leave_the_view(tmp_path):
    """Per work (stage key, kind, units) one run is current: :meth:`Tracker.mark_current` as runs are made, and
    ``make mlflow-ui``'s first line (:func:`retire_superseded`) on a store written before; the view's filter, run
    through MLflow's own search, then returns exactly the current runs."""
    from omegaconf import OmegaConf

    from quantsam.tracking.mlflow_run import SUPERSEDED_TAG, Tracker, comparison_view

    uri = f"sqlite:///{tmp_path}/mlruns.db"
    t = Tracker(OmegaConf.create({"enabled": True, "uri": uri, "artifact_root": str(tmp_path / "art"),
                                  "experiment": "quantsam"}))
    work = {"adamw": {"stage_key": "k1", "kind": "train", "units": "all"},
            "gsam": {"stage_key": "k2", "kind": "train", "units": "all"}}
    made = {}
    for _ in range(3):  # three sweeps of the same two jobs, as a store written before the tag existed
        for opt, tags in work.items():
            with t.run(f"{opt}-all-s0", tags, {"optimizer.name": opt}) as rid:
                made.setdefault(opt, []).append(rid)
    other = {"stage_key": "k1", "kind": "train", "units": "w00"}  # a unit selection of k1: other work, stays
    with t.run("adamw-all-s0-w00", other, {"optimizer.name": "adamw"}) as lone:
        pass
    out = subprocess.run([sys.executable, "-m", "quantsam.tracking.ui", uri, "5077"], capture_output=True, text=True,
                         check=True).stdout
    assert "4 older run(s)" in out
    c = MlflowClient(uri)
    shown = {r.info.run_id for r in c.search_runs([t.experiment_id()], comparison_view()["searchFilter"])}
    assert shown == {made["adamw"][-1], made["gsam"][-1], lone}
    assert c.get_run(made["adamw"][0]).data.tags[SUPERSEDED_TAG] == made["adamw"][-1]
    # a new run of the work (a resumed fit, or a cache-hit copy under a new sweep) takes over at once
    with t.run("adamw-all-s0", work["adamw"], {"optimizer.name": "adamw"}) as newest:
        assert sorted(t.mark_current(work["adamw"], newest)) == sorted(made["adamw"])
    shown = {r.info.run_id for r in c.search_runs([t.experiment_id()], comparison_view()["searchFilter"])}
    assert shown == {newest, made["gsam"][-1], lone}
    assert sorted(t.mark_current(work["adamw"], made["adamw"][0])) == sorted([newest] + made["adamw"][1:])  # back
    assert SUPERSEDED_TAG not in c.get_run(made["adamw"][0]).data.tags
    assert "older run(s)" not in subprocess.run([sys.executable, "-m", "quantsam.tracking.ui", uri, "5077"],
                                                capture_output=True, text=True, check=True).stdout


def test_one_link_per_experiment_that_holds_runs(tmp_path):
    """Studies log to their own experiments (``tracking.experiment``; ``real_arms`` for the real study): the
    Makefile's call prints a link per experiment with runs, each opened on its own comparison view."""
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    c = MlflowClient(uri)
    ids = {name: c.create_experiment(name) for name in ("quantsam", "real_arms", "empty")}
    for name in ("quantsam", "real_arms"):
        c.create_run(ids[name], run_name=f"adamw-{name}")
    out = subprocess.run([sys.executable, "-m", "quantsam.tracking.ui", uri, "5077"], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert [line.split("experiment '")[1].split("'")[0] for line in out] == ["quantsam", "real_arms"]
    assert all(f"/#/experiments/{ids[n]}/runs?" in line for n, line in zip(("quantsam", "real_arms"), out, strict=True))
