"""Standalone factor tests / backtests of a training work dir use the market that run was made on (issue 23)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from quantsam.config import compose


def test_the_runs_data_config_replaces_the_default_market(tmp_path, smoke_cfg):
    from quantsam.cli import _with_the_runs_market

    run = smoke_cfg
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "config.yaml").write_text(OmegaConf.to_yaml(run, resolve=True))
    default = compose([f"paths.data={tmp_path}/data"])
    assert default.data.n_stocks != run.data.n_stocks
    got = _with_the_runs_market(default, tmp_path / "work" / "config.yaml")
    assert got.data.n_stocks == run.data.n_stocks and got.data.dir == run.data.dir
    # a bare signal file: no run config known, the config's market stays
    assert _with_the_runs_market(default, None).data.dir == default.data.dir


def test_inputs_resolve_to_the_artifact_the_graph_starts_from(tmp_path):
    """RUN=<training dir> -> its predictions (the signal stage runs on them), RUN=<signal folder or parquet> -> the
    signal; a signal folder names the training it came from (its summary.json), so its run config is found."""
    import json

    from quantsam.errors import DataError
    from quantsam.signals.source import resolve_input
    from quantsam.tracking.mlflow_run import Tracker

    off = Tracker(OmegaConf.create({"enabled": False, "uri": "", "experiment": "x"}))
    work = tmp_path / "train" / "gsam-all-s0-abc"
    work.mkdir(parents=True)
    (work / "predictions.parquet").write_bytes(b"x")
    (work / "config.yaml").write_text("data: {}\n")
    got = resolve_input(str(work), off)
    assert (got.kind, got.path, got.run_config) == ("predictions", work / "predictions.parquet", work / "config.yaml")
    sig = tmp_path / "signal" / "gsam-all-s0-def"
    sig.mkdir(parents=True)
    (sig / "signal.parquet").write_bytes(b"x")
    (sig / "summary.json").write_text(json.dumps({"summary": {}, "predictions": str(work / "predictions.parquet")}))
    for spec in (sig, sig / "signal.parquet"):
        got = resolve_input(str(spec), off)
        assert (got.kind, got.path, got.run_config) == ("signal", sig / "signal.parquet", work / "config.yaml")
    with pytest.raises(DataError, match="neither a training work dir"):
        resolve_input(str(tmp_path), off)


def test_a_given_input_runs_once_even_under_a_sweeping_experiment(monkeypatch):
    """`make backtest RUN=<dir> experiment=real_cpu`: the experiment sweeps optimizer=adamw,gsam (hydra.mode:
    MULTIRUN), which for one given signal ran the same backtest twice and opened a sweep parent run; a given input
    (and data / report) runs in RUN mode unless --multirun is asked for."""
    import sys

    import quantsam.cli as cli

    seen = {}
    for name in ("backtest", "factor_test", "data", "train"):
        monkeypatch.setitem(cli.COMMANDS, name, lambda n=name: seen.__setitem__(n, list(sys.argv[1:])))
    monkeypatch.setattr(sys, "argv", ["quantsam"])
    cli.main(["backtest", "backtest.input=outputs/train/x", "experiment=real_cpu"])
    cli.main(["factor_test", "factor_test.input=outputs/train/x", "experiment=real_cpu", "--multirun"])
    cli.main(["data", "experiment=real_cpu"])
    cli.main(["train", "experiment=real_cpu"])
    assert seen["backtest"][-1] == "hydra.mode=RUN" and "hydra.mode=RUN" in seen["data"]
    assert "hydra.mode=RUN" not in seen["factor_test"] and "hydra.mode=RUN" not in seen["train"]
