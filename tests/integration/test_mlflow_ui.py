"""The MLflow UI opens where a user looks: a real ``mlflow ui`` on 127.0.0.1 (free port), loaded in headless Chromium
at the link quantsam prints (``make demo``, ``make mlflow-ui``): the experiment's runs table with the sweep's parent
run (not MLflow 3's GenAI "Overview / Traces" page), each child's page with its name and the optimizer / seed /
universe params that the runs table sorts by. Skipped when Chromium is not installed (Debian's ``chromium`` works)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")]


@pytest.fixture
def store(tmp_path):
    """A sweep-shaped store made through quantsam's tracker: a parent run and two children."""
    from omegaconf import OmegaConf

    from quantsam.tracking.mlflow_run import Tracker

    t = Tracker(OmegaConf.create({"enabled": True, "uri": f"sqlite:///{tmp_path}/mlruns.db",
                                  "artifact_root": str(tmp_path / "art"), "experiment": "quantsam"}))
    parent = t.client.create_run(t.experiment_id(), run_name="sweep-all-demo", tags={"kind": "sweep"}).info.run_id
    for opt in ("adamw", "gsam"):
        with t.run(f"{opt}-all-s0", {"optimizer": opt, "seed": "0", "universe": "all", "kind": "train"},
                   {"optimizer.name": opt, "seed": "0", "universe.name": "all"}, parent) as rid:
            t.log_metrics(rid, {"test/rank_ic_mean": 0.1})
    t.client.set_terminated(parent)
    return tmp_path, t.experiment_id()


def page_text(url: str, tmp: Path) -> str:
    import html
    import re

    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp}/chrome", "--virtual-time-budget=25000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=180).stdout
    text = re.sub(r"<(style|script).*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def test_experiment_page_shows_the_runs_table(store):
    tmp, exp_id = store
    from mlflow import MlflowClient

    assert MlflowClient(f"sqlite:///{tmp}/mlruns.db").get_experiment(exp_id).tags["mlflow.experimentKind"] == \
        "custom_model_development"
    port = free_port()
    ui = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri",
                           f"sqlite:///{tmp}/mlruns.db", "--host", "127.0.0.1", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        from quantsam.tracking.mlflow_run import ui_link

        runs_page = page_text(ui_link(f"http://127.0.0.1:{port}", exp_id), tmp)
        (tmp / "experiment.txt").write_text(runs_page)
        assert "Run Name" in runs_page and "sweep-all-demo" in runs_page and "3 matching runs" in runs_page
        assert "Token Usage" not in runs_page  # not the GenAI overview
        client = MlflowClient(f"sqlite:///{tmp}/mlruns.db")
        kids = client.search_runs([exp_id], "tags.kind = 'train'", order_by=["params.`optimizer.name` DESC"])
        assert [r.info.run_name for r in kids] == ["gsam-all-s0", "adamw-all-s0"]  # sortable by the optimizer
        kid = page_text(f"http://127.0.0.1:{port}/#/experiments/{exp_id}/runs/{kids[0].info.run_id}"
                        "?workflowType=machine_learning", tmp)
        assert "gsam-all-s0" in kid and "optimizer.name" in kid and "universe.name" in kid
    finally:
        ui.terminate()
        ui.wait(timeout=30)
