"""Structured-config schemas: the one source of every default.

One dataclass per config group. :func:`register_schemas` stores each schema's defaults in Hydra's ConfigStore as
``<group>/_schema``; every YAML choice in ``conf/<group>/`` starts from it (``defaults: [_schema, _self_]``) and holds
only what that choice changes, with its source. Optimizer defaults come from the optimizer classes' signatures
(``optimizer/_base`` and ``optimizer/_<name>``), whose docstrings cite the papers. Code reads the composed config and
never carries fallback values of its own; ``python -m quantsam check ...`` prints the complete composed config.

The nodes are stored as plain (untyped) dicts on purpose: Hydra then accepts ``group.key=value`` overrides of every
key and rejects unknown keys without ``+``, while :mod:`quantsam.config.validate` does the typing and range checks
and lists every problem at once, with its fix, before any data is read.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf

#: the style exposures quantsam computes (quantsam.features.styles), by name: the keys portfolio.style_bounds takes
STYLES = ("size", "nonlinear_size", "beta", "momentum", "residual_volatility", "liquidity", "reversal")
#: the benchmark indices by universe name (conf/universe/<name>.yaml holds the same code as universe.index_code)
INDEX_CODES = {"csi300": "000300.SH", "csi500": "000905.SH", "csi1000": "000852.SH"}
#: the study's 6 K-line inputs, in order (quantsam.features.kline)
KLINE_FIELDS = ("open", "high", "low", "close", "vwap", "volume")
#: features.normalize: the source's z-score, or the robust z-score clipped at +-3 (features.kline.normalize_window)
NORMALIZE_METHODS = ("zscore", "robust")


@dataclass
class DataConfig:
    source: str = "synthetic"  # synthetic | tidy | qlib | dir
    seed: int = 0
    n_stocks: int = 2000
    start: str | None = "2014-01-01"
    end: str | None = "2024-09-30"
    n_industries: int = 30
    # calibrated to the real market (README "The synthetic market", scripts/market_stats.py); data=synthetic_strong
    # is the earlier, easy market (signal_strength 1.0, no jumps) that fast tests use
    signal_strength: float = 0.5
    jump_rate: float = 0.02  # per stock-day probability of a news jump (limit moves, fat tails, short-term reversal)
    # where the market directory lives: keyed by every generator parameter (its manifest also records them and the
    # generator version, so a directory written with other parameters is regenerated, never reused)
    dir: str = ("${paths.data}/synthetic/s${data.seed}-n${data.n_stocks}-${data.start}-${data.end}"
                "-i${data.n_industries}-a${data.signal_strength}-j${data.jump_rate}")
    path: str | None = None  # tidy / qlib sources: where the user's data lives (never copied into the repo)
    preset: str = "shared_real"  # tidy column mapping preset (quantsam.data.ingest.tidy.PRESETS)
    instruments: str = "all"  # qlib: instruments/<name>.txt
    volume_is_adjusted: bool = False  # qlib: volume stored as volume / factor (Yahoo-collected cn_data)
    tables_path: str | None = None  # qlib: a tidy folder with index members / weights / industry
    ffill_float_shares_days: int = 250


@dataclass
class UniverseConfig:
    name: str = "all"
    index_code: str | None = None
    min_listed_days: int = 63  # exclude names listed for fewer trading days [methodology: S]
    exclude_st: bool = True
    train_on_members: bool = False  # true: train/predict on the index members only (default: all A-shares)


@dataclass
class FeaturesConfig:
    fields: list[str] = field(default_factory=lambda: ["open", "high", "low", "close", "vwap", "volume"])
    daily_window: int = 30  # days [C]
    weekly_window: int = 30  # weeks [I]
    label_horizon: int = 10  # label = return t+1 -> t+11 [S]
    label_price: str = "close"  # close | vwap
    # zscore: each window / its last value, z-scored across names [S]; robust: median / 1.4826 MAD, clipped at +-3
    # (qlib RobustZScoreNorm) — quantsam.features.kline.normalize_window
    normalize: str = "zscore"


@dataclass
class ModelConfig:
    name: str = "gru"
    input_size: int = 6
    hidden_size: int = 64  # [C dims]
    num_layers: int = 2
    dropout: float = 0.0
    frequencies: list[str] = field(default_factory=lambda: ["daily", "weekly"])  # two models trained separately


@dataclass
class TrainerConfig:
    max_epochs: int = 100  # [S]
    patience: int = 10  # [S]
    loss: str = "ic"  # ic (negative Pearson IC of one day's cross-section) | mse
    sample_every: int = 5  # sample dates every 5th trading day [S]
    max_names_per_batch: int | None = None  # cap on names per one-day batch (random subset); null = all
    # validate on at most this many names per date (a fixed random subset per date); null = all [S]
    valid_names: int | None = None
    shuffle_dates: bool = True
    train_days: int = 1512  # 6 years x 252 [S]
    valid_days: int = 504  # 2 years [S]
    test_days: int = 126  # test block; retrain every half year [S]
    purge_days: int = 10  # drop the last 10 trading days of train and valid (label overlap) [S]
    test_start: str = "2017-01-01"  # first test date [C window]
    test_end: str | None = None  # null = data end
    max_windows: int | None = None  # limit the number of rolling windows (null = all)
    n_seeds: int = 3  # seeds per model, predictions averaged [S]
    grad_clip: float | None = None  # max global grad norm of the update direction, or null
    # one fit = one job: train only these windows / models / seed indices of this config (null = all) and stop
    # before assembling; a later run of the full config finds those units done (see README "Fine-grained jobs")
    windows: list[int] | None = None
    models: list[str] | None = None
    seeds: list[int] | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # GPU path: the bars resident on the device, windows gathered there (features.device_windows); auto = on CUDA
    device_data: Any = "auto"  # auto | true | false
    precision: str = "fp32"  # fp32 | bf16 (torch.autocast around the forward passes; the loss in fp32)
    deterministic: bool = True  # CUDA: cudnn.deterministic + deterministic algorithms; false: cudnn.benchmark (faster)
    num_threads: int | None = None  # torch CPU threads; null = cores (or cores / jobs under the joblib launcher)
    # local worker processes that share this config's units (each takes the next unit no one holds; 1 torch thread
    # each unless num_threads is set): 2 x 1 thread beats 1 x 2 threads on 2 cores (scripts/bench/real_fit.py)
    workers: int = 1
    progress: Any = "auto"  # auto (only on a TTY) | true | false
    checkpoint: bool = True
    cache_mb: float = 1024.0  # byte budget for normalised batches kept across epochs (windows are built lazily)
    save_trajectory: str = "first"  # per-epoch weights for the loss landscape: first | all | none


@dataclass
class SignalConfig:
    method: str = "equal_weight"  # per-day z-score of each model's prediction, equal weight [C structure, I z-score]
    models: list[str] = field(default_factory=lambda: ["daily", "weekly"])
    # winsorise each model's seed-averaged prediction per date at median +- mad_k x MAD before its z-score
    # (null: the source's plain z-score); the factor test's own winsorisation is factor_test.mad_k
    mad_k: float | None = None


@dataclass
class FactorTestConfig:
    rebalance_every: int = 5
    horizon: int = 5  # forward return T+1 -> T+6
    price: str = "vwap"  # vwap | close
    n_quantiles: int = 10
    mad_k: float | None = 5.0  # winsorise at median +- 5 MAD (null: no winsorisation)
    neutralize: list[str] = field(default_factory=lambda: ["industry", "size"])
    ic_decay_horizons: list[int] = field(default_factory=lambda: [1, 5, 10, 20])
    start: str | None = "2017-01-01"  # [C window]; clipped to the signal's dates
    end: str | None = "2024-09-30"
    min_listed_days: int = 63
    style_diagnostics: bool = True  # the signal's per-date correlation with each style exposure
    input: str | None = None  # standalone: signal parquet, training work dir, or MLflow run id


@dataclass
class PortfolioConfig:
    min_index_weight: float = 0.80
    max_active: float = 0.008
    industry_tol: float = 0.02
    size_tol: float = 0.2
    max_turnover: float = 0.30
    n_extra_candidates: int = 250  # best-scored non-constituents added to the candidates [I]
    # where they come from: all = any traded A-share; neighbours = names of the index's size (float cap within the
    # constituents' range, listed >= 63 days, not ST), as enhanced funds hold out-of-index names
    extra_pool: str = "all"
    # risk control (issue: style bets on real data). Empty / null = the AI-84 LP: only the size bound above
    style_bounds: dict[str, float] = field(default_factory=dict)  # |active exposure| per style (features.styles)
    te_target: float | None = None  # annualised ex-ante tracking error limit through the factor risk model
    risk_halflife: float = 90.0  # EWMA half-life (days) of factor covariance and specific variance [CNE5]
    risk_history: int = 504  # days of factor returns before the backtest start that warm the risk model
    # volatility regime adjustment of the risk model (USE4 / CNE5): half-life (days) of the bias-statistic EWMA that
    # scales factor covariance and specific variance (quantsam.portfolio.risk.vra_multipliers); null = off
    risk_vra_halflife: float | None = None
    # when a rebalance is infeasible: turnover_first frees turnover, then the risk bounds; graded widens the risk
    # bounds x1.5/x2/x3, then allows turnover x1.5/x2, then the same chain (quantsam.portfolio.problem.GRADED_STEPS)
    relax: str = "turnover_first"
    # direct: the problem's matrices handed to HiGHS (LP) / Clarabel (SOCP) — fast (see quantsam.portfolio.direct);
    # cvxpy: the same model compiled once with parameters, solved by `solver` (then `fallback_solver`) — change it there
    backend: str = "direct"
    solver: str = "CLARABEL"
    fallback_solver: str = "HIGHS"


@dataclass
class BacktestConfig:
    rebalance_every: int = 5
    fill_price: str = "vwap"
    cost_per_side: float = 0.002  # 0.2% per side on traded value [S]
    stamp_duty: float = 0.0  # extra cost on sold value (e.g. 0.0005); 0 = all in cost_per_side
    lot_size: int | None = None  # e.g. 100 shares, with capital set
    capital: float | None = None
    start: str | None = "2016-12-30"
    end: str | None = "2024-09-30"
    universes: list[str] = field(default_factory=lambda: ["csi300", "csi500", "csi1000"])
    # the benchmark's basis: total_return = index weights (published, else float-cap within membership) x adjusted
    # returns, dividends reinvested, as the portfolio earns; price_index = the index's own daily series (no dividends)
    benchmark: str = "total_return"
    attribution: bool = True  # active return by industry, style, specific and costs (needs the styles)
    input: str | None = None  # standalone: signal parquet, training work dir or MLflow run id
    # the indices not yet done run in this many spawned processes of one thread each (same numbers; not in the key):
    # on 2 cores, 2 overlaps CSI1000's backtest with CSI300's and CSI500's
    workers: int = 1


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str = "sqlite:///${paths.root}/mlruns.db"  # the file store is rejected by current MLflow
    artifact_root: str | None = "${paths.root}/mlartifacts"  # null with a server (artifacts proxied)
    experiment: str = "quantsam"


@dataclass
class ReportConfig:
    on_sweep_end: bool = True  # build the comparison report when a pipeline multirun ends
    sweep_dir: str | None = None  # `make report SWEEP=<multirun dir>` re-renders an existing study
    landscape: bool = True  # loss landscape + sharpness diagnostics (AdamW vs landscape_vs)
    landscape_vs: str = "gsam"  # the SAM-family model drawn beside AdamW (first one present if missing)
    landscape_grid: int = 9  # grid points per axis
    landscape_span: float = 1.0  # grid covers [-span, span] x the trajectory's extent on each PCA axis
    landscape_names: int = 200  # names per date in the landscape / sharpness samples
    landscape_days: int = 12  # dates (evenly spaced) from the training / test period
    sharpness_rho: float = 0.05  # radius of the rho-ball sharpness
    power_iters: int = 10  # Hessian power iterations


#: group name -> schema. The optimizer group is checked against the optimizer registry instead (its keys vary).
GROUP_SCHEMAS: dict[str, type] = {
    "data": DataConfig,
    "universe": UniverseConfig,
    "features": FeaturesConfig,
    "model": ModelConfig,
    "trainer": TrainerConfig,
    "signal": SignalConfig,
    "factor_test": FactorTestConfig,
    "portfolio": PortfolioConfig,
    "backtest": BacktestConfig,
    "tracking": TrackingConfig,
    "report": ReportConfig,
}


def defaults_of(schema: type) -> dict[str, Any]:
    """The schema's defaults as a plain dict."""
    return dataclasses.asdict(schema())


def optimizer_defaults(name: str) -> dict[str, Any]:
    """Defaults of optimizer ``name`` from its class signature: base kwargs for ``adamw``, only the variant's own
    hyperparameters otherwise (they are layered on top of the AdamW base choice)."""
    from quantsam.optim import ARM_KEYS, BASE_KWARGS, optimizer_class
    from quantsam.optim.protocol import BaseOptimizer

    cls = optimizer_class(name)
    keys = [k for k in BASE_KWARGS if k != "grad_clip"] if name == "adamw" else list(cls.hyperparameters)
    sig = {**inspect.signature(BaseOptimizer.__init__).parameters, **inspect.signature(cls.__init__).parameters}
    out: dict[str, Any] = {"name": name}
    for k in keys:
        v = sig[k].default
        out[k] = list(v) if isinstance(v, tuple) else v
    if name == "adamw":  # the arm keys (quantsam.optim.ARM_KEYS) sit on the base every choice starts from
        out.update({k: None for k in ARM_KEYS})
    return out


def register_schemas() -> None:
    """Store every schema's defaults in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    from quantsam.optim import list_optimizers

    cs = ConfigStore.instance()
    for group, schema in GROUP_SCHEMAS.items():
        cs.store(group=group, name="_schema", node=OmegaConf.create(defaults_of(schema)))
    for name in list_optimizers():
        cs.store(group="optimizer", name=f"_{name}", node=OmegaConf.create(optimizer_defaults(name)))
