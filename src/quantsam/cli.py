"""Command-line entry points: ``python -m quantsam <command> [hydra overrides]`` (what the Makefile runs).

Each command is a thin ``@hydra.main`` wrapper: it validates the config once, then runs the pipeline (or a stage
given its input artifacts). With ``pipeline.py`` this is the only module that calls stages.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from quantsam.config import register, validate
from quantsam.paths import config_dir

log = logging.getLogger("quantsam")
register()
_CONF = str(config_dir())


def _in_sweep(fn):
    """In a multirun, record a failing job (``<sweep dir>/failed_jobs``) and let the others finish; the sweep then
    exits non-zero. Outside a multirun, raise."""
    from quantsam.tracking.hydra_callback import record_failure

    try:
        return fn()
    except Exception:
        if not record_failure():
            raise
        return None


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def data_main(cfg: DictConfig) -> None:
    """Generate (or check) the market data: ``make data``."""
    from quantsam.data.stage import run_data

    validate(cfg, groups=("data",))
    ref = run_data(cfg)
    print(f"{ref.dir}  (fingerprint {ref.fingerprint})")


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def check_main(cfg: DictConfig) -> None:
    """Compose and validate the config, print it: ``python -m quantsam check optimizer=gsam``."""
    from omegaconf import OmegaConf

    from quantsam.tracking.mlflow_run import Tracker
    from quantsam.train.runtime import pick_device

    validate(cfg)
    pick_device(str(cfg.trainer.device))  # a device this machine does not have fails here, as training would
    Tracker(cfg.tracking).check()  # the tracking server's probe every stage runs first (GET /health)
    print(OmegaConf.to_yaml(cfg, resolve=True))
    print(f"config OK: optimizer={cfg.optimizer.name}, data={cfg.data.source}, universe={cfg.universe.name} "
          "(validated; every stage would accept it)")


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def train_main(cfg: DictConfig) -> float | None:
    """Train the daily + weekly GRUs and write predictions + the signal: ``make train optimizer=gsam``."""
    from quantsam.pipeline import run_pipeline

    def go():
        res = run_pipeline(cfg, stages=["signal"])
        if not res.complete:
            print(f"fit job done: units in {res.work_dir} (run the full config to assemble)")
            return None
        m = res.signal_metrics
        print(f"{'skipped (already finished)' if res.train_skipped else 'done'}: {res.work_dir}")
        print(f"test RankIC {m.get('test/rank_ic_mean', float('nan')):.4f}  "
              f"ICIR {m.get('test/rank_icir', float('nan')):.3f}  MLflow run {res.run_id}")
        return m.get("test/rank_ic_mean")

    return _in_sweep(go)


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def tune_main(cfg: DictConfig) -> float | None:
    """One Optuna trial: train, return the validation objective (``make tune optimizer=gsam``; see train/tune.py)."""
    from quantsam.pipeline import run_pipeline
    from quantsam.train.tune import validation_objective

    def go():
        res = run_pipeline(cfg, stages=["train"])
        value = validation_objective(res.work_dir)
        from hydra.core.hydra_config import HydraConfig

        searched = [o for o in HydraConfig.get().overrides.task if o.startswith("optimizer.")]
        print(f"trial {' '.join(searched)}: mean best validation RankIC {value:.4f}")
        return value

    return _in_sweep(go)


def _with_the_runs_market(cfg: DictConfig, run_config) -> DictConfig:
    """An input made by a training run was made on that run's market: use its ``data`` config (the run's saved
    ``config.yaml``) unless the command line chose the data (``data=...``, ``data.*=...`` or an ``experiment``)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    try:
        task = list(HydraConfig.get().overrides.task)
    except ValueError:
        task = []
    chosen = any(o.lstrip("+~").startswith(("data=", "data.", "experiment=")) for o in task)
    if run_config is None or not run_config.exists() or chosen:
        return cfg
    data = OmegaConf.load(run_config).get("data")
    if data is None:
        return cfg
    cfg = cfg.copy()
    OmegaConf.set_struct(cfg, False)
    cfg.data = data
    log.info("using the market the input was made on (%s: data.source=%s, data.dir=%s); data=... overrides",
             run_config, data.get("source"), data.get("dir"))
    return cfg


def _standalone(cfg: DictConfig, stage: str, spec):
    """A factor test / backtest of an explicit input (``RUN=``): the pipeline's walk seeded with that artifact (a
    training's predictions go through the cached signal stage first), on the market of the run that made it."""
    from quantsam.pipeline import run_pipeline
    from quantsam.signals.source import resolve_input
    from quantsam.tracking.mlflow_run import Tracker

    validate(cfg)
    given = resolve_input(str(spec), Tracker(cfg.tracking))
    return run_pipeline(_with_the_runs_market(cfg, given.run_config), stages=[stage], given=given)


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def factor_test_main(cfg: DictConfig) -> None:
    """Factor test of a signal: ``make factor-test RUN=<work dir | signal parquet | MLflow run id>`` (no RUN: this
    config's signal, trained first if needed)."""
    from quantsam.pipeline import run_pipeline

    if cfg.factor_test.get("input"):
        out = _standalone(cfg, "factor_test", cfg.factor_test.input)
        print(f"{'unchanged' if out.factor_skipped else 'done'}: {out.factor_dir}")
        print(pd_table(out.factor_summary))
        return
    res = run_pipeline(cfg, stages=["factor_test"])
    print(f"factor test: {res.factor_dir}")
    print(pd_table(res.factor_summary))


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def backtest_main(cfg: DictConfig) -> None:
    """Index-enhanced portfolios + VWAP backtest: ``make backtest universe=csi1000 [RUN=...]``."""
    from quantsam.pipeline import run_pipeline

    res = _standalone(cfg, "backtest", cfg.backtest.input) if cfg.backtest.get("input") else \
        run_pipeline(cfg, stages=["backtest"])
    dirs, summaries, skipped = res.backtest_dirs, res.backtest_summaries, res.backtest_skipped
    for name, summary in summaries.items():
        print(f"{name}: {'unchanged' if name in skipped else 'done'} -> {dirs[name]}")
        print(bt_table(summary))


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def pipeline_main(cfg: DictConfig) -> None:
    """Every stage in order: data -> train -> signal -> factor test -> portfolios + backtests (finished ones reused);
    in a sweep, a failed job is recorded and the others go on."""
    from quantsam.pipeline import run_pipeline
    from quantsam.tracking.hydra_callback import job_context

    res = _in_sweep(lambda: run_pipeline(cfg))
    if res is None or job_context().sweep_dir is not None:
        return  # in a sweep, the study report prints the side-by-side summary at the end
    if not res.complete:
        print(f"fit job done: units in {res.work_dir} (run the full config to assemble)")
        return
    if res.factor_dir:
        print(f"factor test: {res.factor_dir}")
        print(pd_table(res.factor_summary))
    for name, summary in res.backtest_summaries.items():
        print(f"backtest {name}: {res.backtest_dirs[name]}")
        print(bt_table(summary))


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def report_main(cfg: DictConfig) -> None:
    """(Re)build the comparison report of a study: ``make report SWEEP=<multirun dir>``."""
    from quantsam.report.stage import run_report

    rep = run_report(cfg)
    print(f"report: {rep.html_path}\n        {rep.md_path}")


@hydra.main(config_path=_CONF, config_name="config", version_base="1.3")
def plan_main(cfg: DictConfig) -> None:
    """Fits, gradient evaluations and estimated wall time of a study before launching it:
    ``python -m quantsam plan experiment=study`` (the experiment's optimizer/seed sweep is read, not run)."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from quantsam.data.stage import run_data
    from quantsam.features.market import open_market
    from quantsam.train.plan import study_plan

    validate(cfg)
    hc = HydraConfig.get()
    params = hc.sweeper.get("params") or {}
    params = dict(params if isinstance(params, dict) else OmegaConf.to_container(params, resolve=False))
    params.update(_PLAN_SWEEP)  # optimizer=a,b / seed=0,1,2 given to `plan` on the command line
    names = str(params.get("optimizer", cfg.optimizer.name)).split(",")
    seeds = str(params.get("seed", cfg.seed)).split(",")
    bad = [x for x in seeds if not x.strip().isdigit()]
    if bad:
        from quantsam.errors import ConfigError

        raise ConfigError([f"seed={','.join(seeds)}: {bad} are not seeds. Fix: integers >= 0, e.g. seed=0,1,2"])
    n_seeds = len(seeds)
    task = [o for o in hc.overrides.task if not o.startswith(("optimizer=", "seed="))]
    optimizers = {n: OmegaConf.to_container(compose("config", [*task, f"optimizer={n}"]).optimizer, resolve=True)
                  for n in names}
    jobs = int(OmegaConf.select(cfg, "hydra.launcher.n_jobs", default=0) or 0) or (
        2 if str(hc.runtime.choices.get("hydra/launcher", "")) == "joblib" else 1)
    workers = int(cfg.trainer.workers)
    from quantsam.train.runtime import usable_cores

    cores = usable_cores()
    threads = int(cfg.trainer.num_threads) if cfg.trainer.num_threads is not None else max(1, cores // (jobs * workers))
    rows, info = study_plan(cfg, open_market(run_data(cfg)), optimizers, n_seeds, threads)
    print(f"{info['windows']} windows x {len(cfg.model.frequencies)} models x {cfg.trainer.n_seeds} seeds = "
          f"{info['units_per_job']} fits per job, {info['names']} names, <= {info['max_epochs']} epochs "
          f"(expected {info['expected_epochs']:.1f}: {info['epochs_basis']}); {n_seeds} seed job(s) per optimizer")
    print(f"{'optimizer':<10} {'fits':>6} {'steps':>12} {'grad evals':>14} {'CPU h':>8} {'CPU h max':>10}")
    for r in rows:
        print(f"{r.optimizer:<10} {r.fits:>6} {r.steps:>12,} {r.grad_evals:>14,} {r.hours:>8.2f} {r.hours_max:>10.2f}")
    total, total_max = sum(r.hours for r in rows), sum(r.hours_max for r in rows)
    print(f"{'total':<10} {sum(r.fits for r in rows):>6} {sum(r.steps for r in rows):>12,} "
          f"{sum(r.grad_evals for r in rows):>14,} {total:>8.2f} {total_max:>10.2f}")
    print("calibration (CPU seconds per sample, first window, " + f"{threads} torch thread(s) per process):")
    for r in rows:
        c = r.calibration
        print(f"  {r.optimizer + ':':<11} train {1e6 * c.cpu_per_sample:7.1f} us/name-step ({c.names_per_step:.0f} names, "
              f"{c.evals_per_step:.0f} grad evals/step), valid {1e6 * c.cpu_per_valid_sample:6.1f} us/name, test "
              f"{1e6 * c.cpu_per_test_sample:6.1f} us/name")
    par = max(1, min(cores, jobs * workers * threads))
    print(f"estimated training wall time: {total / par:.2f} h expected, {total_max / par:.2f} h at max_epochs — "
          f"{jobs} job(s) x {workers} worker(s) x {threads} thread(s) on {cores} cores; data, signal, factor tests "
          "and backtests come on top")


def bt_table(summary: dict) -> str:
    keys = ("excess_ann", "tracking_error", "info_ratio", "excess_max_drawdown", "excess_calmar", "monthly_win_rate",
            "turnover")
    return "\n".join(f"  {k:<20} {summary.get(k, float('nan')):.4f}" for k in keys)


def pd_table(summary: dict) -> str:
    keys = ("rank_ic_mean", "rank_ic_std", "rank_icir", "rank_ic_pos", "top_excess_ann", "top_ir", "top_win_rate",
            "top_turnover")
    return "\n".join(f"  {k:<16} {summary.get(k, float('nan')):.4f}" for k in keys)


_PLAN_SWEEP: dict[str, str] = {}

COMMANDS = {"data": data_main, "check": check_main, "train": train_main, "factor_test": factor_test_main,
            "backtest": backtest_main, "pipeline": pipeline_main, "report": report_main, "plan": plan_main,
            "tune": tune_main}


_SWEEP_PARAMS = "hydra.sweeper.params."


def _tune_args(argv: list[str]) -> list[str]:
    """``tune optimizer=X``: the tune experiment (unless one is given) and X's search space (conf/tune_space/X)."""
    from quantsam.errors import ConfigError

    given = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in argv if "=" in a}
    inside = {k: v for k, v in given.items() if k.lstrip("+~").startswith(_SWEEP_PARAMS)}
    if inside:  # the form conf/tune_space/*.yaml uses; on the command line Hydra refuses it ("Sweeping over Hydra's
        # configuration is not supported"): a search range is an override of the searched key itself
        raise ConfigError([f"{k}={v}: a search range on the command line is written on the searched key itself. "
                           f"Fix: {k.lstrip('+~')[len(_SWEEP_PARAMS):]}='{v}' (conf/tune_space/<optimizer>.yaml "
                           "holds the default ranges)" for k, v in inside.items()])
    name = given.get("optimizer")
    spaces = sorted(p.stem for p in (config_dir() / "tune_space").glob("*.yaml"))
    if name is None or name not in spaces:
        raise ConfigError([f"tune: optimizer={name}: {'give one' if name is None else 'no search space'} — "
                           f"conf/tune_space/ has {spaces} (make tune optimizer=gsam)"])
    problems = _tune_space_problems(name, given)
    if problems:
        raise ConfigError(problems)
    extra = [] if "experiment" in given else ["experiment=tune"]
    return [*argv, *extra, f"+tune_space={name}"]


def _tune_space_problems(name: str, given: dict[str, str]) -> list[str]:
    """Checks the Optuna sweeper would fail on with a raw error: ``hydra.sweeper.n_trials`` >= 1 and every
    ``interval(lo, hi)`` of the search space (``conf/tune_space/<name>.yaml`` and command-line overrides) with
    lo < hi, and lo > 0 on a log scale."""
    import re

    from omegaconf import OmegaConf

    problems = []
    trials = given.get("hydra.sweeper.n_trials")
    if trials is not None and not (trials.isdigit() and int(trials) >= 1):
        problems.append(f"hydra.sweeper.n_trials={trials}: an integer >= 1 (e.g. hydra.sweeper.n_trials=8)")
    space = {k: str(v) for k, v in OmegaConf.load(config_dir() / "tune_space" / f"{name}.yaml").items()}
    space.update({k: v for k, v in given.items() if k.startswith("optimizer.")})
    for key, spec in space.items():
        m = re.search(r"interval\(\s*([^,\s]+)\s*,\s*([^)\s]+)\s*\)", spec)
        if not m:
            continue
        try:
            lo, hi = float(m.group(1)), float(m.group(2))
        except ValueError:
            problems.append(f"{key}={spec}: interval bounds must be numbers, e.g. interval(0.01, 0.5)")
            continue
        if not lo < hi:
            problems.append(f"{key}={spec}: an empty search range (lower {lo} >= upper {hi}). Fix: interval(lo, hi) "
                            "with lo < hi")
        elif "log" in spec and lo <= 0:
            problems.append(f"{key}={spec}: a log-scale range needs a lower bound > 0, e.g. interval(0.001, {hi})")
    return problems


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        names = ", ".join(COMMANDS)
        print(f"usage: python -m quantsam <command> [hydra overrides...]\ncommands: {names}", file=sys.stderr)
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    command = argv.pop(0)
    if command == "plan":  # reads a study's sweep, never launches it
        # optimizer=... / seed=... on the command line replace the experiment's sweep, one value or several (as the
        # launch would run them: a command-line value wins over hydra.sweeper.params)
        sweep = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in argv if a.split("=", 1)[0] in ("optimizer", "seed")}
        _PLAN_SWEEP.update(sweep)
        argv = [a for a in argv if a not in ("--multirun", "-m") and a.split("=", 1)[0] not in sweep]
        argv += ["hydra.mode=RUN"]
    explicit_sweep = any(a in ("--multirun", "-m") for a in argv)
    given_input = any(a.split("=", 1)[0] in (f"{command}.input", f"+{command}.input") for a in argv)
    if not explicit_sweep and (command in ("data", "report") or given_input):
        # one market / one sweep dir / one given signal: an experiment's sweep (hydra.mode: MULTIRUN, e.g.
        # experiment=real_cpu's optimizer=adamw,gsam) would repeat the same job once per arm
        argv += ["hydra.mode=RUN"]
    if command == "tune":
        from quantsam.errors import ConfigError

        try:
            argv = _tune_args(argv)
        except ConfigError as e:  # before Hydra starts: the message, no traceback
            print(f"quantsam tune: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    sys.argv = [f"quantsam {command}", *argv]
    COMMANDS[command]()


if __name__ == "__main__":
    main()
