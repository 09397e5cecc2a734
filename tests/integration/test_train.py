"""The training stage end to end on the smoke experiment: outputs, MLflow run, determinism, kill -9 resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from quantsam.config import compose

ROOT = Path(__file__).parents[2]


def overrides(tmp: Path, *extra: str) -> list[str]:
    return ["experiment=smoke", f"paths.runs={tmp}/out", f"tracking.uri=sqlite:///{tmp}/mlruns.db",
            f"tracking.artifact_root={tmp}/art", f"paths.data={tmp.parent}/data", *extra]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return tmp_path_factory.mktemp("train")


@pytest.fixture(scope="module")
def smoke_run(shared):
    from quantsam.train.stage import run_train

    cfg = compose(overrides(shared / "a", "optimizer=gsam"))
    return run_train(cfg), cfg


def test_outputs_and_mlflow_run(smoke_run):
    from mlflow import MlflowClient

    out, cfg = smoke_run
    preds = pd.read_parquet(out.predictions)
    assert list(preds.columns[:5]) == ["date", "code", "model", "seed", "score"]
    assert set(preds.model) == {"daily", "weekly"}
    sig = pd.read_parquet(out.signal)
    assert {"date", "code", "score", "daily", "weekly"} <= set(sig.columns)
    assert (out.work_dir / "DONE").exists()
    run = MlflowClient(str(cfg.tracking.uri)).get_run(out.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "gsam-all-s0"
    for tag in ("git_sha", "git_dirty", "config_hash", "data_fingerprint", "version.torch", "version.python",
                "hydra_job_num"):
        assert tag in run.data.tags, tag
    assert run.data.params["optimizer.rho"] == "0.05"
    for m in ("test/rank_ic_mean", "test/rank_icir", "cost/grad_evals", "cost/wall_s", "daily/valid/rank_ic",
              "weekly/train/loss"):
        assert m in run.data.metrics, m
    hist = MlflowClient(str(cfg.tracking.uri)).get_metric_history(out.run_id, "daily/valid/rank_ic")
    assert [h.step for h in hist] == [0, 1]  # one value per epoch (2 epochs)
    assert run.data.metrics["cost/grad_evals"] % 2 == 0  # GSAM: two passes a step
    arts = {a.path for a in MlflowClient(str(cfg.tracking.uri)).list_artifacts(out.run_id)}
    assert {"config.yaml", "predictions.parquet", "signal.parquet", "models", "history"} <= arts


def test_same_config_same_numbers_and_rerun_is_skipped(smoke_run, shared):
    from quantsam.train.stage import run_train

    out, _ = smoke_run
    again = run_train(compose(overrides(shared / "a", "optimizer=gsam")))
    assert again.skipped and again.run_id == out.run_id
    fresh = run_train(compose(overrides(shared / "b", "optimizer=gsam")))  # new work dir and store: retrains
    assert not fresh.skipped
    pd.testing.assert_frame_equal(pd.read_parquet(out.predictions), pd.read_parquet(fresh.predictions))
    assert fresh.metrics["test/rank_ic_mean"] == out.metrics["test/rank_ic_mean"]


def test_failed_run_is_marked_failed(shared, monkeypatch):
    from mlflow import MlflowClient

    import quantsam.train.stage as stage
    from quantsam.train.stage import run_train

    def boom(*a, **k):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(stage, "combine_equal_weight", boom)
    cfg = compose(overrides(shared / "c", "optimizer=sam"))
    with pytest.raises(RuntimeError, match="injected"):
        run_train(cfg)
    client = MlflowClient(str(cfg.tracking.uri))
    runs = client.search_runs([client.get_experiment_by_name("quantsam").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    tb = client.download_artifacts(runs[0].info.run_id, "traceback.txt", str(shared / "c"))
    assert "injected failure" in Path(tb).read_text()


def _cmd(tmp: Path) -> list[str]:
    return [sys.executable, "-m", "quantsam", "train", *overrides(tmp, "optimizer=sam", "trainer.max_epochs=3",
                                                                  "trainer.patience=3", "trainer.max_windows=2")]


def test_kill9_and_resume_gives_identical_predictions(shared):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    ref_dir, kill_dir = shared / "ref", shared / "kill"
    subprocess.run(_cmd(ref_dir), cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    p = subprocess.Popen(_cmd(kill_dir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    ckpts: list[Path] = []
    while time.time() < deadline and p.poll() is None:
        ckpts = list((kill_dir / "out").glob("train/*/checkpoints/*.pt"))
        preds = list((kill_dir / "out").glob("train/*/predictions/*.parquet"))
        if ckpts and preds:  # mid-run: one unit finished, another in progress
            break
        time.sleep(0.05)
    assert p.poll() is None, "run finished before it could be killed; make it longer"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not list((kill_dir / "out").glob("train/*/DONE"))
    subprocess.run(_cmd(kill_dir), cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    a = pd.read_parquet(next((ref_dir / "out").glob("train/*/predictions.parquet")))
    b = pd.read_parquet(next((kill_dir / "out").glob("train/*/predictions.parquet")))
    pd.testing.assert_frame_equal(a, b)


def test_factor_test_stage_on_a_training_run(smoke_run, shared):
    from mlflow import MlflowClient

    from quantsam.factor_test.stage import run_factor_test

    out, cfg = smoke_run
    by_dir = run_factor_test(compose(overrides(shared / "a", "optimizer=gsam", f"factor_test.input={out.work_dir}")))
    assert not by_dir.skipped and (by_dir.out_dir / "ic.png").exists()
    again = run_factor_test(compose(overrides(shared / "a", "optimizer=gsam", f"factor_test.input={out.run_id}")))
    assert again.skipped and again.run_id == out.run_id  # same signal + config: cached
    run = MlflowClient(str(cfg.tracking.uri)).get_run(out.run_id)
    assert run.data.metrics["factor/rank_ic_mean"] == pytest.approx(by_dir.summary["rank_ic_mean"])
    arts = {a.path for a in MlflowClient(str(cfg.tracking.uri)).list_artifacts(out.run_id, "factor_test")}
    assert "factor_test/layer_nav.png" in arts and "factor_test/factor_table.parquet" in arts


def test_config_hash_ignores_later_stages(smoke_run):
    from quantsam.tracking.mlflow_run import config_hash

    _, cfg = smoke_run
    other = compose([*overrides(Path("/x"), "optimizer=gsam"), "factor_test.n_quantiles=5", "portfolio.max_active=0.01",
                     "trainer.progress=false"])
    assert config_hash(other) == config_hash(cfg)
    assert config_hash(compose(overrides(Path("/x"), "optimizer=gsam", "optimizer.rho=0.06"))) != config_hash(cfg)


def test_backtest_stage_logs_per_index_metrics(smoke_run, shared):
    from mlflow import MlflowClient

    from quantsam.backtest.stage import run_backtest

    out, cfg = smoke_run
    ov = overrides(shared / "a", "optimizer=gsam", "universe=csi500", f"backtest.input={out.work_dir}")
    bt = run_backtest(compose(ov))
    assert list(bt.summaries) == ["csi500"] and not bt.skipped
    assert (bt.out_dirs["csi500"] / "nav.png").exists()
    run = MlflowClient(str(cfg.tracking.uri)).get_run(out.run_id)
    assert run.data.metrics["bt/csi500/excess_ann"] == pytest.approx(bt.summaries["csi500"]["excess_ann"])
    assert run_backtest(compose(ov)).skipped == ["csi500"]
    # training on all A-shares is one run for every index: universe=csi500 did not retrain
    assert len(list((shared / "a" / "out" / "train").glob("gsam-*"))) == 1
