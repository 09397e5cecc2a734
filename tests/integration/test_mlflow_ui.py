"""The MLflow UI opens where a user looks: a real ``mlflow ui`` on 127.0.0.1 (free port), loaded in headless Chromium
at the link quantsam prints (``make demo``, ``make mlflow-ui``): the experiment's runs table with the sweep's parent
run (not MLflow 3's GenAI "Overview / Traces" page), each child's page with its name and the optimizer / seed /
universe params that the runs table sorts by. Skipped when Chromium is not installed (Debian's ``chromium`` works)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantsam.tracking import snapshot

pytestmark = [pytest.mark.slow, pytest.mark.skipif(snapshot.browser() is None, reason="no Chromium installed")]


#: a superseded run's value of every headline metric: must not reach the view (alone or in the group's average)
STALE = 7.77
#: the demo's headline numbers (experiment=demo, this session), logged as the pipeline logs them
HEADLINE = {"adamw": {"summary/test_rank_ic_daily": 0.0456, "summary/factor_rank_ic_weekly": 0.0589,
                      "summary/csi500_excess_ann": 0.0408, "summary/csi500_ir": 0.95, "summary/grad_evals": 1485},
            "gsam": {"summary/test_rank_ic_daily": 0.0523, "summary/factor_rank_ic_weekly": 0.0635,
                     "summary/csi500_excess_ann": 0.1061, "summary/csi500_ir": 2.51, "summary/grad_evals": 2970}}


@pytest.fixture
def store(tmp_path):
    """A sweep-shaped store made through quantsam's tracker: a parent run and two children."""
    from omegaconf import OmegaConf

    from quantsam.tracking.mlflow_run import Tracker

    t = Tracker(OmegaConf.create({"enabled": True, "uri": f"sqlite:///{tmp_path}/mlruns.db",
                                  "artifact_root": str(tmp_path / "art"), "experiment": "quantsam"}))
    parent = t.client.create_run(t.experiment_id(), run_name="sweep-all-demo", tags={"kind": "sweep"}).info.run_id
    ids = {}
    for opt in ("adamw", "gsam"):
        work = {"stage_key": f"key-{opt}", "kind": "train", "units": "all"}
        with t.run(f"{opt}-all-s0", {**work, "optimizer": opt, "seed": "0", "universe": "all"},
                   {"optimizer.name": opt, "seed": "0", "universe.name": "all"}, parent) as rid:
            t.mark_current(work, rid)
            ids[opt] = rid
            t.log_metrics(rid, {"test/rank_ic_mean": 0.1, **HEADLINE[opt]})
            t.log_metrics(rid, {f"bt/csi300/m{k:03d}": 0.0 for k in range(60)})  # a long tail sorting before them
    t.client.set_terminated(parent)
    # an earlier run of adamw's work (an earlier sweep's copy, say, with other downstream numbers): retired
    with t.run("adamw-all-s0", {"stage_key": "key-adamw", "kind": "train", "units": "all", "optimizer": "adamw"},
               {"optimizer.name": "adamw", "seed": "0", "universe.name": "all"}) as old:
        t.log_metrics(old, {k: STALE for k in HEADLINE["adamw"]})
    t.client.set_tag(old, "superseded_by", ids["adamw"])
    return tmp_path, t.experiment_id()


def test_comparison_view_shows_the_headline_metrics_for_both_arms(store):
    """The link quantsam prints opens the experiment's saved view: the training runs grouped by optimizer (no
    collapsed sweep parent), the ``summary/...`` metrics as columns with both arms' values — nothing picked by
    hand. The screenshot is the README's (``QUANTSAM_SCREENSHOT=docs/figures/mlflow_compare.png`` writes it there)."""
    tmp, exp_id = store
    from quantsam.tracking.mlflow_run import ui_link

    with snapshot.mlflow_ui(f"sqlite:///{tmp}/mlruns.db") as base:
        link = ui_link(base, exp_id)
        page = snapshot.page_text(link, tmp, "--window-size=2200,900")
        (tmp / "compare.txt").write_text(page)
        for col in ("summary/test_rank_ic_daily", "summary/factor_rank_ic_weekly", "summary/csi500_ir"):
            assert col in page, col
        for opt, vals in HEADLINE.items():  # one group per optimizer (its average over seeds), its runs below
            assert f"Group: {opt}" in page and f"{opt}-all-s0" in page
            assert str(vals["summary/test_rank_ic_daily"]) in page and str(vals["summary/csi500_ir"]) in page
        assert "Additional runs" in page and "sweep-all-demo" not in page  # the parent: folded away
        # the retired run: neither its values nor an average with them (grad evals (1485 + 7.77) / 2 = 746.385)
        assert str(STALE) not in page and "746.3" not in page
        shot = Path(os.environ.get("QUANTSAM_SCREENSHOT") or tmp / "compare.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.chromium(tmp, "--window-size=2100,560", "--hide-scrollbars", f"--screenshot={shot}", link)
        assert shot.stat().st_size > 10_000


def test_experiment_page_shows_the_runs_table(store):
    tmp, exp_id = store
    from mlflow import MlflowClient

    assert MlflowClient(f"sqlite:///{tmp}/mlruns.db").get_experiment(exp_id).tags["mlflow.experimentKind"] == \
        "custom_model_development"
    with snapshot.mlflow_ui(f"sqlite:///{tmp}/mlruns.db") as base:
        from quantsam.tracking.mlflow_run import ui_link

        runs_page = snapshot.page_text(ui_link(base, exp_id, view=False), tmp)
        (tmp / "experiment.txt").write_text(runs_page)
        assert "Run Name" in runs_page and "sweep-all-demo" in runs_page and "4 matching runs" in runs_page
        assert "Token Usage" not in runs_page  # not the GenAI overview
        client = MlflowClient(f"sqlite:///{tmp}/mlruns.db")
        kids = client.search_runs([exp_id], "tags.kind = 'train'", order_by=["params.`optimizer.name` DESC"])
        assert [r.info.run_name for r in kids][:2] == ["gsam-all-s0", "adamw-all-s0"]  # sortable by the optimizer
        kid = snapshot.page_text(f"{base}/#/experiments/{exp_id}/runs/{kids[0].info.run_id}"
                        "?workflowType=machine_learning", tmp)
        assert "gsam-all-s0" in kid and "optimizer.name" in kid and "universe.name" in kid


def test_snapshot_command_pictures_an_experiment_s_view(store, capsys):
    """``python -m quantsam.tracking.snapshot <uri> <experiment> <png>`` (the README's real-study picture): the
    groups it reports are the view's, the retired run included in neither; the server it started is gone after."""
    tmp, _ = store
    out = tmp / "fig" / "view.png"
    assert snapshot.main([f"sqlite:///{tmp}/mlruns.db", "quantsam", str(out)]) == 0
    said = capsys.readouterr().out
    assert "groups shown: adamw, gsam" in said or "groups shown: gsam, adamw" in said, said
    assert out.stat().st_size > 10_000
    with pytest.raises(SystemExit, match="no experiment 'nope'"):
        snapshot.main([f"sqlite:///{tmp}/mlruns.db", "nope", str(out)])
    assert snapshot.main(["too", "few"]) == 2


def test_readme_snapshot_command_as_written(store):
    """The README's line, run verbatim by bash in a folder holding a store with a ``real_arms`` experiment (and the
    project's virtual environment as ``.venv``): it writes the picture where the README says and names the arm."""
    import re
    import subprocess
    import sys

    from omegaconf import OmegaConf

    from quantsam.tracking.mlflow_run import Tracker

    tmp, _ = store
    t = Tracker(OmegaConf.create({"enabled": True, "uri": f"sqlite:///{tmp}/mlruns.db",
                                  "artifact_root": str(tmp / "art"), "experiment": "real_arms"}))
    with t.run("wsam-all-s0", {"kind": "train", "optimizer": "wsam"}, {"optimizer.name": "wsam"}) as rid:
        t.log_metrics(rid, HEADLINE["gsam"])
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    line = re.search(r"^\.venv/bin/python -m quantsam\.tracking\.snapshot .*$", readme, flags=re.M).group(0)
    (tmp / ".venv").symlink_to(Path(sys.prefix))  # the environment running this test (a venv: its root)
    done = subprocess.run(["bash", "-c", line], cwd=tmp, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "experiment 'real_arms', groups shown: wsam" in done.stdout, done.stdout
    assert (tmp / "docs/figures/real_arms_mlflow.png").stat().st_size > 10_000
