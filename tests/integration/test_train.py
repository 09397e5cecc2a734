"""The training stage end to end on the smoke experiment: outputs, MLflow run, determinism, kill -9 resume, and the
later stages on its signal."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from quantsam.config import compose
from tests.cli import argv

ROOT = Path(__file__).parents[2]


def overrides(tmp: Path, *extra: str) -> list[str]:
    return ["experiment=smoke", f"paths.runs={tmp}/out", f"tracking.uri=sqlite:///{tmp}/mlruns.db",
            f"tracking.artifact_root={tmp}/art", f"paths.data={tmp.parent}/data", *extra]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return tmp_path_factory.mktemp("train")


def market_of(cfg):
    from quantsam.data.stage import run_data
    from quantsam.features.market import open_market

    return open_market(run_data(cfg))


@pytest.fixture(scope="module")
def smoke_run(shared):
    from quantsam.pipeline import run_pipeline

    cfg = compose(overrides(shared / "a", "optimizer=gsam"))
    return run_pipeline(cfg, stages=["signal"]), cfg


def test_outputs_and_mlflow_run(smoke_run):
    from mlflow import MlflowClient

    from quantsam import stageio

    out, cfg = smoke_run
    preds = pd.read_parquet(out.work_dir / "predictions.parquet")
    assert list(preds.columns[:5]) == ["date", "code", "model", "seed", "score"]
    assert set(preds.model) == {"daily", "weekly"}
    sig = pd.read_parquet(out.signal)
    assert {"date", "code", "score", "daily", "weekly"} <= set(sig.columns)
    assert stageio.read_manifest(out.work_dir / "manifest.json")["stage"] == "train"
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
    assert {"config.yaml", "predictions.parquet", "signal", "models", "history"} <= arts
    sig_arts = {a.path for a in MlflowClient(str(cfg.tracking.uri)).list_artifacts(out.run_id, "signal")}
    assert {"signal/signal.parquet", "signal/summary.json", "signal/signal_windows.parquet"} <= sig_arts
    assert out.signal.parent.parent == Path(cfg.paths.runs) / "signal"  # beside the training's folder, not in it


def test_same_config_same_numbers_and_rerun_is_skipped(smoke_run, shared):
    from quantsam.pipeline import run_pipeline
    from quantsam.train.stage import run_train

    out, cfg = smoke_run
    again = run_train(cfg, market_of(cfg))
    assert again.skipped and again.run_id == out.run_id
    fresh = run_pipeline(compose(overrides(shared / "b", "optimizer=gsam")), stages=["signal"])  # new dir and store
    assert fresh.run_id != out.run_id
    pd.testing.assert_frame_equal(pd.read_parquet(out.work_dir / "predictions.parquet"),
                                  pd.read_parquet(fresh.work_dir / "predictions.parquet"))
    assert fresh.signal_metrics["test/rank_ic_mean"] == out.signal_metrics["test/rank_ic_mean"]


def test_failed_run_is_marked_failed(shared, monkeypatch):
    from mlflow import MlflowClient

    import quantsam.train.stage as stage

    def boom(*a, **k):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(stage, "assemble", boom)
    cfg = compose(overrides(shared / "c", "optimizer=sam"))
    with pytest.raises(RuntimeError, match="injected"):
        stage.run_train(cfg, market_of(cfg))
    client = MlflowClient(str(cfg.tracking.uri))
    runs = client.search_runs([client.get_experiment_by_name("quantsam").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    tb = client.download_artifacts(runs[0].info.run_id, "traceback.txt", str(shared / "c"))
    assert "injected failure" in Path(tb).read_text()


def test_mlflow_state_follows_the_config(smoke_run, shared):
    """A new store or experiment gets its own run of the finished work (logged from the work dir, nothing retrained);
    +rerun=true marks an abandoned RUNNING run KILLED."""
    from mlflow import MlflowClient

    from quantsam.train.stage import run_train

    out, cfg = smoke_run
    store = f"sqlite:///{shared}/other-store.db"
    moved = compose(overrides(shared / "a", "optimizer=gsam", f"tracking.uri={store}"))
    res = run_train(moved, market_of(moved))
    assert res.skipped and res.run_id and res.run_id != out.run_id  # no "Run not found", no retraining
    c = MlflowClient(store)
    run = c.get_run(res.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["relogged_from"] == str(out.work_dir)
    assert [h.step for h in c.get_metric_history(res.run_id, "daily/valid/rank_ic")] == [0, 1]
    exp2 = compose(overrides(shared / "a", "optimizer=gsam", "tracking.experiment=elsewhere"))
    res2 = run_train(exp2, market_of(exp2))
    c2 = MlflowClient(str(exp2.tracking.uri))
    assert c2.get_experiment(c2.get_run(res2.run_id).info.experiment_id).name == "elsewhere"
    # an abandoned RUNNING run of this work (its process died) is marked KILLED by a rerun (of a copy of the work)
    import shutil

    shutil.copytree(shared / "a" / "out", shared / "e" / "out")
    ghost = c2.create_run(c2.get_run(out.run_id).info.experiment_id, run_name="ghost",
                          tags={"stage_key": c2.get_run(out.run_id).data.tags["stage_key"], "kind": "train",
                                "units": "all", "host": "gone-host", "pid": "1"}).info.run_id
    rerun = compose(overrides(shared / "e", "optimizer=gsam", f"tracking.uri={cfg.tracking.uri}", "+rerun=true"))
    again = run_train(rerun, market_of(rerun))
    assert not again.skipped and c2.get_run(ghost).info.status == "KILLED"
    pd.testing.assert_frame_equal(pd.read_parquet(out.work_dir / "predictions.parquet"),
                                  pd.read_parquet(again.predictions))


def _cmd(tmp: Path) -> list[str]:
    return argv("train", *overrides(tmp, "optimizer=sam", "trainer.max_epochs=3", "trainer.patience=3",
                                    "trainer.max_windows=2"))


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
    assert not list((kill_dir / "out").glob("train/*/manifest.json"))
    subprocess.run(_cmd(kill_dir), cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    a = pd.read_parquet(next((ref_dir / "out").glob("train/*/predictions.parquet")))
    b = pd.read_parquet(next((kill_dir / "out").glob("train/*/predictions.parquet")))
    pd.testing.assert_frame_equal(a, b)
    # MLflow: the killed run is marked KILLED, the resumed run holds every epoch once, at consecutive steps
    from mlflow import MlflowClient

    c = MlflowClient(f"sqlite:///{kill_dir}/mlruns.db")
    runs = c.search_runs([c.get_experiment_by_name("quantsam").experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]
    done = next(r for r in runs if r.info.status == "FINISHED")
    for key in ("daily/valid/rank_ic", "weekly/train/loss"):
        steps = sorted(h.step for h in c.get_metric_history(done.info.run_id, key))
        ref_runs = MlflowClient(f"sqlite:///{ref_dir}/mlruns.db").search_runs(
            [MlflowClient(f"sqlite:///{ref_dir}/mlruns.db").get_experiment_by_name("quantsam").experiment_id])
        n_ref = len(MlflowClient(f"sqlite:///{ref_dir}/mlruns.db").get_metric_history(ref_runs[0].info.run_id, key))
        assert steps == list(range(n_ref)), (key, steps)


def test_factor_test_stage_on_a_training_run(smoke_run, shared):
    from mlflow import MlflowClient

    from quantsam.factor_test.stage import run_factor_test
    from quantsam.signals.source import resolve_input
    from quantsam.signals.stage import run_signal
    from quantsam.tracking.mlflow_run import Tracker

    out, cfg = smoke_run
    given = resolve_input(str(out.work_dir), Tracker(cfg.tracking))  # a work dir -> its predictions and run
    assert given.kind == "predictions" and given.path == out.work_dir / "predictions.parquet"
    assert given.run_id == out.run_id
    sig = run_signal(cfg, given.path, market_of(cfg), given.run_id)  # the signal stage: cached by the pipeline
    assert sig.skipped and sig.path == out.signal
    by_dir = run_factor_test(cfg, sig.path, market_of(cfg), given.run_id)
    assert not by_dir.skipped and (by_dir.out_dir / "ic.png").exists()
    by_run = resolve_input(out.run_id, Tracker(cfg.tracking))  # an MLflow run id -> the same
    assert (by_run.kind, by_run.path, by_run.run_id) == (given.kind, given.path, out.run_id)
    by_signal = resolve_input(str(out.signal.parent), Tracker(cfg.tracking))  # a signal folder -> its run
    assert (by_signal.kind, by_signal.path, by_signal.run_id) == ("signal", out.signal, out.run_id)
    again = run_factor_test(cfg, by_signal.path, market_of(cfg), by_signal.run_id)
    assert again.skipped and again.run_id == out.run_id and again.out_dir == by_dir.out_dir  # cached
    run = MlflowClient(str(cfg.tracking.uri)).get_run(out.run_id)
    assert run.data.metrics["factor/rank_ic_mean"] == pytest.approx(by_dir.summary["rank_ic_mean"])
    arts = {a.path for a in MlflowClient(str(cfg.tracking.uri)).list_artifacts(out.run_id, "factor_test")}
    assert "factor_test/layer_nav.png" in arts and "factor_test/factor_table.parquet" in arts


def test_train_key_ignores_later_stages_and_follows_the_data(smoke_run):
    from quantsam.train.stage import train_key

    _, cfg = smoke_run
    other = compose([*overrides(Path("/x"), "optimizer=gsam"), "factor_test.n_quantiles=5", "portfolio.max_active=0.01",
                     "trainer.progress=false", "trainer.windows=[0]", "data.dir=/elsewhere",
                     "signal.models=[daily]", "signal.mad_k=3"])  # the signal stage keys its own config
    assert train_key(other, "fp") == train_key(cfg, "fp")
    assert train_key(compose(overrides(Path("/x"), "optimizer=gsam", "optimizer.rho=0.06")), "fp") != train_key(cfg, "fp")
    assert train_key(cfg, "another market") != train_key(cfg, "fp")


def test_backtest_stage_logs_per_index_metrics(smoke_run, shared):
    from mlflow import MlflowClient

    from quantsam.backtest.stage import run_backtest

    out, cfg = smoke_run
    c500 = compose(overrides(shared / "a", "optimizer=gsam", "universe=csi500"))
    bt = run_backtest(c500, out.signal, market_of(c500), out.run_id)
    assert list(bt.summaries) == ["csi500"] and not bt.skipped
    assert (bt.out_dirs["csi500"] / "nav.png").exists()
    run = MlflowClient(str(cfg.tracking.uri)).get_run(out.run_id)
    assert run.data.metrics["bt/csi500/excess_ann"] == pytest.approx(bt.summaries["csi500"]["excess_ann"])
    assert run_backtest(c500, out.signal, market_of(c500), out.run_id).skipped == ["csi500"]
    # training on all A-shares is one run for every index: universe=csi500 did not retrain
    assert len(list((shared / "a" / "out" / "train").glob("gsam-*"))) == 1


def test_backtest_lanes_give_the_same_numbers(smoke_run, shared):
    """backtest.workers=2: the three indices run in two spawned one-thread lanes (CSI1000 alone, CSI300 + CSI500);
    every table and summary equals the one-process run's, the metrics reach the training run."""
    import shutil

    import pandas as pd
    from mlflow import MlflowClient

    from quantsam.backtest.stage import run_backtest

    out, cfg = smoke_run
    c = compose(overrides(shared / "a", "optimizer=gsam", "universe=all"))
    runs = {}
    for w in (1, 2):
        d = shared / f"lanes{w}"
        d.mkdir()
        shutil.copy(out.signal, d / "signal.parquet")
        c.backtest.workers = w
        c.paths.runs = str(d)  # each its own results folder: the second must compute, not reuse the first's
        runs[w] = run_backtest(c, d / "signal.parquet", market_of(c), out.run_id)
    assert list(runs[2].summaries) == ["csi300", "csi500", "csi1000"] and not runs[2].skipped
    for n in ("csi300", "csi500", "csi1000"):
        assert runs[1].summaries[n] == runs[2].summaries[n], n
        assert runs[1].out_dirs[n].name == runs[2].out_dirs[n].name  # same key: workers is not a result
        for t in ("daily", "rebalances", "yearly"):
            pd.testing.assert_frame_equal(pd.read_parquet(runs[1].out_dirs[n] / f"{t}.parquet"),
                                          pd.read_parquet(runs[2].out_dirs[n] / f"{t}.parquet"))
    run = MlflowClient(str(cfg.tracking.uri)).get_run(out.run_id)
    assert run.data.metrics["bt/csi1000/excess_ann"] == pytest.approx(runs[2].summaries["csi1000"]["excess_ann"])


def test_backtest_lanes_log_their_progress(tmp_path, caplog, monkeypatch):
    """backtest.workers=2 (issue 31: lanes printed nothing for 30 minutes on real data): each lane's rebalances —
    done/total, elapsed, ETA, throttled like training's lines — reach this process's log."""
    import logging
    import re

    from quantsam import progress
    from quantsam.backtest.stage import run_backtest

    cfg = compose(overrides(tmp_path, "tracking.enabled=false", "backtest.workers=2",
                            "backtest.universes=[csi300,csi500]", "backtest.start=2019-06-28"))
    market = market_of(cfg)
    a = pd.read_parquet(market.dir / "alpha.parquet").rename(columns={"alpha": "score"})
    a[a["date"] >= "2019-06-01"].to_parquet(tmp_path / "signal.parquet", index=False)
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)  # the lanes get the parent's interval: a line per rebalance
    with caplog.at_level(logging.INFO):
        bt = run_backtest(cfg, tmp_path / "signal.parquet", market)
    assert sorted(bt.summaries) == ["csi300", "csi500"]
    lines = [r.getMessage() for r in caplog.records if r.name == "quantsam.progress"]
    assert any(m.startswith("backtest: 2 indices in 2 lanes") for m in caplog.messages), caplog.messages[:20]
    for n in ("csi300", "csi500"):
        mine = [m for m in lines if m.startswith(f"backtest {n} rebalances: ")]
        assert mine and re.fullmatch(r"backtest \w+ rebalances: \d+/\d+ done, [\d.]+ min elapsed, ETA [\d.]+ min",
                                     mine[-1]), lines[:6]


def test_two_workers_share_the_units_and_give_the_same_numbers(smoke_run, shared):
    """trainer.workers=2: a spawned worker and this process split the units (file locks), and the predictions and the
    logged epochs equal the one-worker run's."""
    import json

    from mlflow import MlflowClient

    from quantsam.train.stage import run_train

    out, cfg = smoke_run
    two = compose(overrides(shared / "w", "optimizer=gsam", "trainer.n_seeds=2", "trainer.workers=2"))
    one = compose(overrides(shared / "w1", "optimizer=gsam", "trainer.n_seeds=2"))
    r2, r1 = run_train(two, market_of(two)), run_train(one, market_of(one))
    assert r2.work_dir.name == r1.work_dir.name  # workers change no number: same key
    pd.testing.assert_frame_equal(pd.read_parquet(r2.predictions), pd.read_parquet(r1.predictions))
    c2, c1 = MlflowClient(str(two.tracking.uri)), MlflowClient(str(one.tracking.uri))
    h2 = [(h.step, h.value) for h in c2.get_metric_history(r2.run_id, "weekly/valid/rank_ic")]
    assert h2 == [(h.step, h.value) for h in c1.get_metric_history(r1.run_id, "weekly/valid/rank_ic")]
    assert c2.get_run(r2.run_id).data.tags["train_workers"] == "2"
    assert all(json.loads(p.read_text())["stage"] == "train_unit" for p in (r2.work_dir / "units").glob("*.json"))


def test_two_identical_commands_at_once_leave_one_finished_run(tmp_path):
    """The second of two identical `train` commands waits for the first, then reuses its work and its MLflow run."""
    from mlflow import MlflowClient

    args = argv("train", *overrides(tmp_path, "trainer.max_epochs=1"), f"hydra.run.dir={tmp_path}/hydra")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errs = [p.communicate(timeout=900)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs[0][-2000:] + errs[1][-2000:]
    c = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db")
    runs = c.search_runs([c.get_experiment_by_name("quantsam").experiment_id], filter_string="tags.kind = 'train'")
    assert [r.info.status for r in runs] == ["FINISHED"], [(r.info.run_name, r.info.status) for r in runs]


def test_stage_folders_outlive_a_retrain_and_a_new_signal_config_reuses_the_models(shared):
    """The signal / factor test folders sit beside the training's, keyed by what they read: ``+rerun=true``
    retrains (same seed -> same predictions) and finds them again; ``signal.models=[daily]`` trains nothing and
    makes a new signal folder beside the first."""
    from quantsam.pipeline import run_pipeline

    first = run_pipeline(compose(overrides(shared / "rr", "optimizer=adamw")), stages=["factor_test"])
    again = run_pipeline(compose(overrides(shared / "rr", "optimizer=adamw", "+rerun=true")), stages=["factor_test"])
    assert not again.train_skipped and again.run_id != first.run_id  # retrained
    assert again.signal == first.signal and again.factor_dir == first.factor_dir and first.signal.exists()
    daily = run_pipeline(compose(overrides(shared / "rr", "optimizer=adamw", "signal.models=[daily]")),
                         stages=["signal"])
    assert daily.train_skipped and daily.work_dir == first.work_dir
    assert daily.signal.parent != first.signal.parent and daily.signal.parent.parent == first.signal.parent.parent
    assert set(pd.read_parquet(daily.signal).columns) == {"date", "code", "score", "daily"}
