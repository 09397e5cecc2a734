"""Sweeps never merge (issues 21, 31): a second sweep in a folder owned by a live sweep stops before any job starts,
non-zero with the fix (two real processes racing for one folder); the default folder is unique to the microsecond; a
killed sweep's folder is taken over and its RUNNING parent run is marked KILLED by the next sweep."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from quantsam.tracking.hydra_callback import OWNER_FILE, MlflowSweepCallback
from tests.cli import ROOT, argv, isolated


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
        # SystemExit, not an Exception: Hydra would swallow an Exception raised in a callback and run the sweep
        with pytest.raises(SystemExit, match=r"another sweep \(pid \d+\) is running in this folder.*Fix"):
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


def test_two_sweeps_started_together_in_one_folder_never_merge(tmp_path):
    """Issue 31's reproduction: two real ``train --multirun`` processes on one ``hydra.sweep.dir``. One runs; the
    other exits non-zero with the fix before any of its jobs starts: no job folder, no ``multirun.yaml`` of its own."""
    sweep = tmp_path / "multirun" / "same"
    common = ["train", "--multirun", "experiment=smoke", "trainer.num_threads=1", "launcher=joblib",
              "hydra.launcher.n_jobs=1", f"hydra.sweep.dir={sweep}", "optimizer=adamw,sam",
              *isolated(tmp_path, mlflow="off")]
    procs = {seed: subprocess.Popen(argv(*common, f"seed={seed}"), cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for seed in (70, 71)}
    try:
        deadline = time.time() + 300
        while all(p.poll() is None for p in procs.values()) and time.time() < deadline:
            time.sleep(0.2)
        loser = next(s for s, p in procs.items() if p.poll() is not None)
        winner = 71 if loser == 70 else 70
        out, err = procs[loser].communicate()
        assert procs[loser].returncode != 0, err[-2000:]
        assert re.search(r"another sweep \(pid \d+\) is running in this folder.*Fix: give this one its own "
                         r"hydra.sweep.dir", err), err[-2000:]
        assert "Launching" not in out + err and not list(sweep.glob(f"*-s{loser}"))  # none of its jobs started
        assert procs[winner].poll() is None  # the other sweep still runs, alone in the folder
        while not (sweep / "multirun.yaml").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert f"seed={winner}" in (sweep / "multirun.yaml").read_text()
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
            p.communicate(timeout=60)


def test_the_default_sweep_folder_is_unique_to_the_microsecond():
    """Two sweeps launched in the same second compose different default folders (``multirun/<date>/<time+us>``)."""
    from hydra import compose, initialize_config_dir

    from quantsam.config import register
    from quantsam.paths import config_dir

    register()
    dirs = []
    for _ in range(2):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            dirs.append(str(compose("config", return_hydra_config=True).hydra.sweep.dir))
    assert dirs[0] != dirs[1] and all(re.search(r"/multirun/\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}-\d{6}$", d)
                                      for d in dirs), dirs
