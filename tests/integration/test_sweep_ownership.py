"""Sweeps never merge (issue 21): a second sweep in a folder owned by a live sweep stops with the fix; a killed
sweep's folder is taken over and its RUNNING parent run is marked KILLED by the next sweep."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from quantsam.errors import ConfigError
from quantsam.tracking.hydra_callback import OWNER_FILE, MlflowSweepCallback


def sweep_config(tmp_path, name: str):
    return OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "multirun" / name)}},
                             "universe": {"name": "all"},
                             "tracking": {"enabled": True, "uri": f"sqlite:///{tmp_path}/mlruns.db",
                                          "artifact_root": str(tmp_path / "art"), "experiment": "quantsam"}})


def test_a_live_owner_stops_a_second_sweep_and_a_dead_one_is_taken_over(tmp_path):
    cfg = sweep_config(tmp_path, "10-00-00")
    d = tmp_path / "multirun" / "10-00-00"
    d.mkdir(parents=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (d / OWNER_FILE).write_text(json.dumps({"pid": live.pid, "host": socket.gethostname()}))
        with pytest.raises(ConfigError, match=r"another sweep \(pid \d+\) started in the same second.*Fix"):
            MlflowSweepCallback().on_multirun_start(cfg)
    finally:
        live.kill()
        live.wait()
    MlflowSweepCallback().on_multirun_start(cfg)  # its owner is gone now: taken over
    assert json.loads((d / OWNER_FILE).read_text())["pid"] != live.pid


def test_the_parent_run_of_a_killed_sweep_is_marked_killed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    first = sweep_config(tmp_path, "10-00-01")
    MlflowSweepCallback().on_multirun_start(first)
    c = MlflowClient(str(first.tracking.uri))
    parent = json.loads((tmp_path / "multirun" / "10-00-01" / "mlflow_parent.json").read_text())["run_id"]
    c.set_tag(parent, "pid", str(dead.pid))  # as if that sweep had been killed with kill -9
    MlflowSweepCallback().on_multirun_start(sweep_config(tmp_path, "10-05-00"))
    assert c.get_run(parent).info.status == "KILLED"
