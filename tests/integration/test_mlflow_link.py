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
    run = lambda: subprocess.run([sys.executable, "-m", "quantsam.tracking.ui", uri, "5077"],  # noqa: E731
                                 capture_output=True, text=True, check=True).stdout
    assert "no runs yet" in run()
    c = MlflowClient(uri)
    assert "no experiment 'quantsam' yet" in run()
    exp_id = c.create_experiment("quantsam")  # as an earlier quantsam made it: no view tag
    out = run()
    assert f"http://127.0.0.1:5077/#/experiments/{exp_id}/runs?workflowType=machine_learning" \
           f"&viewStateShareKey={VIEW_KEY}" in out
    view = json.loads(c.get_experiment(exp_id).tags[VIEW_TAG])
    assert view == comparison_view() and "metrics.`summary/test_rank_ic_daily`" in view["selectedColumns"]
    assert view["groupBy"]["groupByKeys"] == [{"mode": "param", "groupByData": "optimizer.name"}]
