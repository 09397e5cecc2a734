"""``tracking=server``: a real ``mlflow server`` on 127.0.0.1 (free port, SQLite backend, artifacts proxied), a study
multirun logging to it over HTTP only: parent and child runs FINISHED, metrics and artifacts on the server, the
report attached to the parent — and no worker ever opens a database file."""

from __future__ import annotations

from tests.cli import isolated, quantsam


def test_study_logs_through_the_server_only(server, tmp_path):
    from mlflow import MlflowClient

    uri, srv_dir = server
    work = tmp_path / "work"
    proc = quantsam("pipeline", "--multirun", "experiment=smoke", "optimizer=adamw,gsam", "report.landscape=false",
                    "launcher=basic", "trainer.num_threads=1", *isolated(work, mlflow=None), "tracking=server",
                    f"tracking.uri={uri}", f"hydra.sweep.dir={work}/sweep")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(work.rglob("*.db")), "a worker opened a database file"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("quantsam")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and {r.data.params.get("optimizer.name") for r in children} == {"adamw", "gsam"}
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all("test/rank_ic_mean" in r.data.metrics for r in children)
    arts = {a.path for a in client.list_artifacts(children[0].info.run_id)}
    assert arts, "no artifacts on the server"
    assert list((srv_dir / "art").rglob("*.parquet")), "artifacts were not proxied to the server's store"
    assert "report" in {a.path for a in client.list_artifacts(parents[0].info.run_id)}
