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
