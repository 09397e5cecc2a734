"""Standalone factor tests / backtests of a training work dir use the market that run was made on (issue 23)."""

from __future__ import annotations

from omegaconf import OmegaConf

from quantsam.config import compose


def test_the_runs_data_config_replaces_the_default_market(tmp_path):
    from quantsam.cli import _with_the_runs_market

    run = compose(["experiment=smoke", f"paths.data={tmp_path}/data"])
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "config.yaml").write_text(OmegaConf.to_yaml(run, resolve=True))
    (tmp_path / "work" / "signal.parquet").write_bytes(b"")
    default = compose([f"paths.data={tmp_path}/data"])
    assert default.data.n_stocks != run.data.n_stocks
    got = _with_the_runs_market(default, tmp_path / "work" / "signal.parquet")
    assert got.data.n_stocks == run.data.n_stocks and got.data.dir == run.data.dir
    alone = tmp_path / "alone.parquet"  # a bare signal file: no run config beside it, the config's market stays
    alone.write_bytes(b"")
    assert _with_the_runs_market(default, alone).data.dir == default.data.dir


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
