"""The cluster launchers run the study for real, each logging through an ``mlflow server`` (workers never open the
SQLite file): a local Ray cluster on 127.0.0.1 with 2 CPUs (``launcher=ray``, hydra-ray-launcher) and submitit's
local executor (``launcher=submitit_local``, the code path of ``launcher=slurm`` minus sbatch). Each run's numbers
equal the basic launcher's, and every MLflow run is FINISHED. Slow (a few minutes each on 2 cores); skipped when
the launcher's extra is not installed (``pip install -e '.[ray]'`` / ``'.[slurm]'``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.cli import isolated, quantsam

pytestmark = pytest.mark.slow


def _study(tmp: Path, name: str, *extra: str) -> Path:
    work = tmp / name
    proc = quantsam("pipeline", "--multirun", "experiment=smoke", "optimizer=adamw,gsam", "report.landscape=false",
                    "trainer.num_threads=1", *isolated(work, data=f"{tmp}/data"), f"hydra.sweep.dir={work}/sweep",
                    *extra, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


def _numbers(work: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for p in sorted((work / "out" / "train").glob("*-all-s0-*")):
        out[p.name.split("-")[0]] = pd.read_parquet(p / "predictions.parquet")
    return out


def _check_same_and_finished(tmp: Path, work: Path, uri: str) -> None:
    from mlflow import MlflowClient

    ref = _study(tmp, "basic", "launcher=basic", f"tracking.uri=sqlite:///{tmp}/basic.db",
                 f"tracking.artifact_root={tmp}/basic-art")
    a, b = _numbers(ref), _numbers(work)
    assert sorted(a) == sorted(b) == ["adamw", "gsam"]
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k], check_exact=True)
    assert not list(work.rglob("*.db")), "a worker opened a database file"
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("quantsam").experiment_id])
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    parent = json.loads((work / "sweep" / "mlflow_parent.json").read_text())["run_id"]
    assert sum(r.data.tags.get("mlflow.parentRunId") == parent for r in runs) == 2


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None,
                    reason="pip install -e '.[ray]'")
def test_ray_local_cluster(server, tmp_path):
    uri, _ = server
    work = _study(tmp_path, "ray", "launcher=ray", "tracking=server", f"tracking.uri={uri}",
                  "+hydra.launcher.ray.init.num_cpus=2", "+hydra.launcher.ray.init.include_dashboard=false",
                  "+hydra.launcher.ray.init._node_ip_address=127.0.0.1")
    _check_same_and_finished(tmp_path, work, uri)


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
                    reason="pip install -e '.[slurm]'")
def test_submitit_local(server, tmp_path):
    uri, _ = server
    work = _study(tmp_path, "submitit", "launcher=submitit_local", "tracking=server", f"tracking.uri={uri}")
    assert list((work / "sweep" / ".submitit").rglob("*_result.pkl")), "not run through submitit"
    _check_same_and_finished(tmp_path, work, uri)
