"""Command-line entry points: ``python -m quantsam <stage> [hydra overrides]`` (what the Makefile runs).

Each stage is a thin ``@hydra.main`` wrapper around a plain ``run_<stage>(cfg)`` that tests import directly.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from quantsam.config import register_resolvers, validate
from quantsam.paths import config_dir

log = logging.getLogger("quantsam")
register_resolvers()
_CONF = str(config_dir())


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def data_main(cfg: DictConfig) -> None:
    """Generate (or check) the market data: ``make data``."""
    from quantsam.data.stage import run_data

    validate(cfg, groups=("data",))
    print(run_data(cfg))


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def check_main(cfg: DictConfig) -> None:
    """Compose and validate the config, print it: ``python -m quantsam check optimizer=gsam``."""
    from omegaconf import OmegaConf

    validate(cfg)
    print(OmegaConf.to_yaml(cfg, resolve=True))


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def train_main(cfg: DictConfig) -> float | None:
    """Train the daily + weekly GRUs and write predictions: ``make train optimizer=gsam``."""
    from quantsam.tracking.hydra_callback import record_failure
    from quantsam.train.stage import run_train

    try:
        out = run_train(cfg)
    except Exception:
        # in a sweep, record the failure and let the other jobs finish; the sweep then exits non-zero
        if not record_failure():
            raise
        return None
    print(f"{'skipped (already finished)' if out.skipped else 'done'}: {out.work_dir}")
    print(f"test RankIC {out.metrics.get('test/rank_ic_mean', float('nan')):.4f}  "
          f"ICIR {out.metrics.get('test/rank_icir', float('nan')):.3f}  MLflow run {out.run_id}")
    return out.metrics.get("test/rank_ic_mean")


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def factor_test_main(cfg: DictConfig) -> None:
    """Factor test of a signal: ``make factor-test RUN=<work dir | signal parquet | MLflow run id>``."""
    from quantsam.factor_test.stage import run_factor_test

    out = run_factor_test(cfg)
    print(f"{'unchanged' if out.skipped else 'done'}: {out.out_dir}")
    print(pd_table(out.summary))


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def backtest_main(cfg: DictConfig) -> None:
    """Index-enhanced portfolios + VWAP backtest: ``make backtest universe=csi1000 [RUN=...]``."""
    from quantsam.backtest.stage import run_backtest

    out = run_backtest(cfg)
    for name, summary in out.summaries.items():
        print(f"{name}: {'unchanged' if name in out.skipped else 'done'} -> {out.out_dirs[name]}")
        print(bt_table(summary))


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def pipeline_main(cfg: DictConfig) -> None:
    """Every stage in order: data -> train -> signal -> factor test -> portfolios + backtests (finished ones reused);
    in a sweep, a failed job is recorded and the others go on."""
    from quantsam.pipeline import run_pipeline
    from quantsam.tracking.hydra_callback import record_failure

    try:
        res = run_pipeline(cfg)
    except Exception:
        if not record_failure():
            raise
        return None
    print(f"factor test: {res.factor_dir}")
    print(pd_table(res.factor_summary))
    for name, summary in res.backtest_summaries.items():
        print(f"backtest {name}: {res.backtest_dirs[name]}")
        print(bt_table(summary))


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def report_main(cfg: DictConfig) -> None:
    """(Re)build the comparison report of a study: ``make report SWEEP=<multirun dir>``."""
    from quantsam.report.stage import build_study_report

    rep = build_study_report(cfg)
    print(f"report: {rep.html_path}\n        {rep.md_path}")


def bt_table(summary: dict) -> str:
    keys = ("excess_ann", "tracking_error", "info_ratio", "excess_max_drawdown", "excess_calmar", "monthly_win_rate",
            "turnover")
    return "\n".join(f"  {k:<20} {summary.get(k, float('nan')):.4f}" for k in keys)


def pd_table(summary: dict) -> str:
    keys = ("rank_ic_mean", "rank_ic_std", "rank_icir", "rank_ic_pos", "top_excess_ann", "top_ir", "top_win_rate",
            "top_turnover")
    return "\n".join(f"  {k:<16} {summary.get(k, float('nan')):.4f}" for k in keys)


STAGES = {"data": data_main, "check": check_main, "train": train_main, "factor_test": factor_test_main,
          "backtest": backtest_main, "pipeline": pipeline_main, "report": report_main}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in STAGES:
        names = ", ".join(STAGES)
        print(f"usage: python -m quantsam <stage> [hydra overrides...]\nstages: {names}", file=sys.stderr)
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    stage = argv.pop(0)
    sys.argv = [f"quantsam {stage}", *argv]
    STAGES[stage]()


if __name__ == "__main__":
    main()
