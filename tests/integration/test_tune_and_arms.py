"""`make tune` (Hydra's Optuna sweeper) and the new study arms, run the way users run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli import isolated, quantsam

SMOKE = ["data.n_stocks=200", "data.start=2016-01-01", "data.end=2019-12-31", "trainer.train_days=252",
         "trainer.valid_days=126", "trainer.test_days=63", "trainer.test_start=2018-06-01", "trainer.max_windows=2",
         "trainer.max_epochs=2", "trainer.patience=2", "model.hidden_size=16"]


def client(tmp: Path):
    from mlflow import MlflowClient

    c = MlflowClient(f"sqlite:///{tmp}/mlruns.db")
    return c, c.search_runs([c.get_experiment_by_name("quantsam").experiment_id])


def test_tune_writes_the_best_neighbourhood_found_on_validation_data(tmp_path):
    proc = quantsam("tune", "optimizer=gsam", "experiment=tune", *SMOKE, "hydra.sweeper.n_trials=2",
                    *isolated(tmp_path), f"hydra.sweep.dir={tmp_path}/sweep", f"tune.write_dir={tmp_path}/conf")
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    tuned = yaml.safe_load((tmp_path / "conf" / "gsam_tuned.yaml").read_text())
    assert tuned["defaults"] == ["gsam", "_self_"] and tuned["arm"] == "gsam_tuned"
    assert tuned["rho"] == res["best_params"]["optimizer.rho"] and 0.01 <= tuned["rho"] <= 0.5
    assert tuned["alpha"] == res["best_params"]["optimizer.alpha"] and 0.0 <= tuned["alpha"] <= 0.3
    text = (tmp_path / "conf" / "gsam_tuned.yaml").read_text()
    assert "optimizer.rho: tag(log, interval(0.01, 0.5))" in text  # the search space travels with the result
    # the objective is the trials' mean best validation RankIC, recomputed here from each trial's fit histories
    c, rs = client(tmp_path)
    parent = next(r for r in rs if r.data.tags.get("kind") == "sweep")
    kids = [r for r in rs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(kids) == 2 and all(r.info.status == "FINISHED" for r in kids)
    values = []
    for r in kids:
        hist = [json.loads(p.read_text()) for p in Path(r.data.tags["work_dir"]).glob("history/*.json")]
        assert len(hist) == 4  # 2 windows x 2 models
        values.append(sum(h["best_valid_rank_ic"] for h in hist) / len(hist))
    assert res["best_value"] == pytest.approx(max(values), abs=1e-12)
    assert "gsam_tuned.yaml" in {a.path for a in c.list_artifacts(parent.info.run_id)}


def test_tune_without_a_search_space_says_which_exist():
    proc = quantsam("tune", "optimizer=adamw", timeout=120)
    assert proc.returncode != 0
    assert "no search space" in proc.stderr and "'gsam'" in proc.stderr


def test_new_arms_train_in_one_sweep_and_the_matched_arm_gets_twice_the_budget(tmp_path):
    # the arms whose training path differs (ESAM / MESA need the trainer's BatchClosure); RST and CSAM take any closure
    # and ran end to end in the measured study_extended (README)
    arms = "adamw,adamw_matched,looksam,esam,mesa"
    proc = quantsam("train", "--multirun", "experiment=smoke", "launcher=joblib", f"optimizer={arms}",
                    "trainer.max_epochs=1", "trainer.patience=1", *isolated(tmp_path), f"hydra.sweep.dir={tmp_path}/sweep")
    assert proc.returncode == 0, proc.stderr[-3000:]
    c, rs = client(tmp_path)
    kids = {r.info.run_name: r for r in rs if r.data.tags.get("kind") != "sweep"}
    assert sorted(kids) == sorted(f"{a}-all-s0" for a in arms.split(","))
    assert all(r.info.status == "FINISHED" for r in kids.values())
    assert kids["adamw_matched-all-s0"].data.tags["optimizer_name"] == "adamw"
    assert kids["esam-all-s0"].data.tags["family"] == "efficiency" and kids["mesa-all-s0"].data.metrics["cost/grad_evals"] > 0

    def epochs(arm):
        w = Path(kids[f"{arm}-all-s0"].data.tags["work_dir"])
        return [len(json.loads(p.read_text())["history"]) for p in w.glob("history/*.json")]

    assert set(epochs("adamw")) == {1} and set(epochs("adamw_matched")) == {2}  # max_epochs 1 x match_passes 2
    ge = {a: kids[f"{a}-all-s0"].data.metrics["cost/grad_evals"] for a in ("adamw", "adamw_matched", "looksam")}
    assert ge["adamw_matched"] == 2 * ge["adamw"]
    assert ge["adamw"] < ge["looksam"] < 2 * ge["adamw"]  # 1 + 1/k evaluations per step
