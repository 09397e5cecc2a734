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
#: universe names (conf/universe/<name>.yaml): all A-shares, or one benchmark index
UNIVERSES = ("all", *INDEX_CODES)
#: data.source: the embedded synthetic market, a directory written elsewhere, or an adapter over the user's export
DATA_SOURCES = ("synthetic", "dir", "tidy", "qlib")
#: model.gru_impl: the fused CPU GRU (models/fused_gru.py) for differentiated CPU forwards, or torch.nn.GRU always
GRU_IMPLS = ("fused", "torch")


# ---- config facts, written once ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    """What one config key may hold and what it does, written once beside its default: its allowed values (``choices``
    or a numeric range ``lo``/``hi``, open or closed; ``integer``; ``date``; ``nullable``), whether it changes
    results (``result=False``: left out of its stage's cache key), whether it joins the key only when set away
    from its default (``key_if_set``: added after work was done, so that work stays valid) and the fix a wrong value
    is told (``fix``; else worded from the rule). :mod:`quantsam.config.validate` checks every key from its fact;
    the stages' keys read :func:`non_result_keys` / :func:`key_if_set`."""

    choices: tuple | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    date: bool = False
    nullable: bool = False
    result: bool = True
    key_if_set: bool = False
    fix: str | None = None

    @property
    def constrains(self) -> bool:
        """Whether the fact restricts the key's values (else it only says what the key does, e.g. result=False)."""
        return self.choices is not None or self.lo is not None or self.hi is not None or self.date or self.integer

    def ok(self, v: Any) -> bool:
        import math

        if v is None:
            return self.nullable
        if self.choices is not None:
            return v in self.choices
        if self.date:
            import pandas as pd

            try:
                pd.Timestamp(str(v))
            except (ValueError, TypeError):
                return False
            return True
        if not self.constrains:
            return True
        if isinstance(v, bool) or not isinstance(v, int | float) or (self.integer and not isinstance(v, int)):
            return False
        if not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)

    def describe(self) -> str:
        """The fix: what the value must be, in words (``fix`` when given)."""
        if self.fix:
            return self.fix
        null = "null or " if self.nullable else ""
        if self.choices is not None:
            words = [str(c).lower() if isinstance(c, bool) else str(c) for c in self.choices]
            return null + (" or ".join(words) if len(words) <= 2 else ", ".join(words[:-1]) + f" or {words[-1]}")
        if self.date:
            return "a date (YYYY-MM-DD)" + (" or null" if self.nullable else "")
        what = "an integer" if self.integer else "a finite number"
        if self.lo is not None and self.hi is not None:
            if self.integer and not (self.lo_open or self.hi_open):
                return f"{null}{what} in [{self.lo:g}, {self.hi:g}]"
            return f"{null}in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{null}{what} {'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"{null}{what} {'<' if self.hi_open else '<='} {self.hi:g}"
        return f"{null}{what}"


def fact(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, **facts: Any):
    """A schema field with its :class:`Fact`: ``x: int = fact(63, lo=0, integer=True)``."""
    meta = {"fact": Fact(**{k: tuple(v) if k == "choices" else v for k, v in facts.items()})}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def facts_of(schema: type) -> dict[str, Fact]:
    """Every field of a group schema that carries a :class:`Fact`, by name."""
    return {f.name: f.metadata["fact"] for f in dataclasses.fields(schema) if "fact" in f.metadata}


def non_result_keys(group: str) -> tuple[str, ...]:
    """The keys of ``group`` that change no number (``result=False``): out of their stage's cache key."""
    return tuple(k for k, f in facts_of(GROUP_SCHEMAS[group]).items() if not f.result)


def key_if_set(group: str) -> tuple[tuple[str, Any], ...]:
    """(key, default) of the keys of ``group`` that join the stage key only when set away from their default."""
    defaults = defaults_of(GROUP_SCHEMAS[group])
    return tuple((k, defaults[k]) for k, f in facts_of(GROUP_SCHEMAS[group]).items() if f.key_if_set)


@dataclass
class DataConfig:
    source: str = fact("synthetic", choices=DATA_SOURCES)
    seed: int = fact(0, lo=0, integer=True)
    n_stocks: int = fact(2000, lo=20, integer=True)
    start: str | None = fact("2014-01-01", date=True, nullable=True)
    end: str | None = fact("2024-09-30", date=True, nullable=True)
    n_industries: int = fact(30, lo=1, hi=30, integer=True)
    # calibrated to the real market (README "The synthetic market", scripts/market_stats.py); data=synthetic_strong
    # is the earlier, easy market (signal_strength 1.0, no jumps) that fast tests use
    signal_strength: float = fact(0.5, lo=0)
    # per stock-day probability of a news jump (limit moves, fat tails, short-term reversal)
    jump_rate: float = fact(0.02, lo=0, hi=0.2, fix="a probability in [0, 0.2]")
    # where the market directory lives: keyed by every generator parameter (its manifest also records them and the
    # generator version, so a directory written with other parameters is regenerated, never reused)
    dir: str = ("${paths.data}/synthetic/s${data.seed}-n${data.n_stocks}-${data.start}-${data.end}"
                "-i${data.n_industries}-a${data.signal_strength}-j${data.jump_rate}")
    path: str | None = None  # tidy / qlib sources: where the user's data lives (never copied into the repo)
    preset: str = "shared_real"  # tidy column mapping preset (quantsam.data.ingest.tidy.PRESETS)
    instruments: str = "all"  # qlib: instruments/<name>.txt
    volume_is_adjusted: bool = False  # qlib: volume stored as volume / factor (Yahoo-collected cn_data)
    tables_path: str | None = None  # qlib: a tidy folder with index members / weights / industry
    ffill_float_shares_days: int = fact(250, lo=0, integer=True)


@dataclass
class UniverseConfig:
    name: str = fact("all", choices=UNIVERSES)
    index_code: str | None = None
    min_listed_days: int = fact(63, lo=0, integer=True)  # exclude names listed for fewer trading days [methodology: S]
    exclude_st: bool = True
    train_on_members: bool = False  # true: train/predict on the index members only (default: all A-shares)


@dataclass
class FeaturesConfig:
    fields: list[str] = field(default_factory=lambda: ["open", "high", "low", "close", "vwap", "volume"])
    daily_window: int = fact(30, lo=2, hi=1000, integer=True)  # days [C]
    weekly_window: int = fact(30, lo=2, hi=200, integer=True)  # weeks [I]
    label_horizon: int = fact(10, lo=1, hi=250, integer=True)  # label = return t+1 -> t+11 [S]
    label_price: str = fact("close", choices=("close", "vwap"))
    # zscore: each window / its last value, z-scored across names [S]; robust: median / 1.4826 MAD, clipped at +-3
    # (qlib RobustZScoreNorm) — quantsam.features.kline.normalize_window
    normalize: str = fact("zscore", choices=NORMALIZE_METHODS, key_if_set=True)


@dataclass
class ModelConfig:
    name: str = "gru"
    input_size: int = 6
    hidden_size: int = fact(64, lo=1, integer=True)  # [C dims]
    num_layers: int = fact(2, lo=1, integer=True)
    dropout: float = fact(0.0, lo=0, hi=1, hi_open=True)
    # fused: the hand-written CPU GRU backward (models/fused_gru.py, equal to torch.nn.GRU within float rounding:
    # tests/unit/test_fused_gru.py) for training steps on the CPU; torch: torch.nn.GRU everywhere
    gru_impl: str = fact("fused", choices=GRU_IMPLS)
    frequencies: list[str] = field(default_factory=lambda: ["daily", "weekly"])  # two models trained separately


@dataclass
class TrainerConfig:
    max_epochs: int = fact(100, lo=1, integer=True)  # [S]
    patience: int = fact(10, lo=1, integer=True)  # [S]
    loss: str = fact("ic", choices=("ic", "mse"))  # ic (negative Pearson IC of one day's cross-section) | mse
    sample_every: int = fact(5, lo=1, integer=True)  # sample dates every 5th trading day [S]
    # cap on names per one-day batch (random subset); null = all
    max_names_per_batch: int | None = fact(None, lo=3, integer=True, nullable=True,
                                           fix="null (all names) or an integer >= 3")
    # validate on at most this many names per date (a fixed random subset per date); null = all [S]
    valid_names: int | None = fact(None, lo=3, integer=True, nullable=True, key_if_set=True,
                                   fix="null (all names) or an integer >= 3")
    shuffle_dates: bool = True
    train_days: int = 1512  # 6 years x 252 [S]
    valid_days: int = 504  # 2 years [S]
    test_days: int = fact(126, lo=1, integer=True)  # test block; retrain every half year [S]
    purge_days: int = 10  # drop the last 10 trading days of train and valid (label overlap) [S]
    test_start: str = fact("2017-01-01", date=True)  # first test date [C window]
    test_end: str | None = fact(None, date=True, nullable=True)  # null = data end
    # limit the number of rolling windows (null = all)
    max_windows: int | None = fact(None, lo=1, integer=True, nullable=True,
                                   fix="null (all windows) or an integer >= 1")
    n_seeds: int = fact(3, lo=1, integer=True)  # seeds per model, predictions averaged [S]
    # max global grad norm of the update direction, or null
    grad_clip: float | None = fact(None, lo=0, lo_open=True, nullable=True)
    # one fit = one job: train only these windows / models / seed indices of this config (null = all) and stop
    # before assembling; a later run of the full config finds those units done (see README "Fine-grained jobs")
    windows: list[int] | None = fact(None, result=False)
    models: list[str] | None = fact(None, result=False)
    seeds: list[int] | None = fact(None, result=False)
    device: str = fact("auto", result=False)  # auto | cpu | cuda | cuda:N
    # GPU path: the bars resident on the device, windows gathered there (features.device_windows); auto = on CUDA
    device_data: Any = fact("auto", choices=("auto", True, False), result=False)
    # fp32 | bf16 (torch.autocast around the forward passes; the loss in fp32)
    precision: str = fact("fp32", choices=("fp32", "bf16"), key_if_set=True)
    # CUDA: cudnn.deterministic + deterministic algorithms; false: cudnn.benchmark (faster)
    deterministic: bool = fact(True, choices=(True, False), result=False)
    # torch CPU threads; null = cores (or cores / jobs under the joblib launcher)
    num_threads: int | None = fact(None, lo=1, integer=True, nullable=True, result=False)
    # local worker processes that share this config's units (each takes the next unit no one holds; 1 torch thread
    # each unless num_threads is set): 2 x 1 thread beats 1 x 2 threads on 2 cores (scripts/bench/real_fit.py)
    workers: int = fact(1, lo=1, integer=True, result=False)
    progress: Any = fact("auto", choices=("auto", True, False), result=False)  # auto: only on a TTY
    checkpoint: bool = fact(True, choices=(True, False), result=False)
    # byte budget for normalised batches kept across epochs (windows are built lazily)
    cache_mb: float = fact(1024.0, lo=0, result=False)
    # per-epoch weights for the loss landscape
    save_trajectory: str = fact("first", choices=("first", "all", "none"), result=False)


@dataclass
class SignalConfig:
    # per-day z-score of each model's prediction, equal weight [C structure, I z-score]
    method: str = fact("equal_weight", choices=("equal_weight",))
    models: list[str] = field(default_factory=lambda: ["daily", "weekly"])
    # winsorise each model's seed-averaged prediction per date at median +- mad_k x MAD before its z-score
    # (null: the source's plain z-score); the factor test's own winsorisation is factor_test.mad_k
    mad_k: float | None = fact(None, lo=0, lo_open=True, nullable=True)


@dataclass
class FactorTestConfig:
    rebalance_every: int = fact(5, lo=1, integer=True)
    horizon: int = fact(5, lo=1, integer=True)  # forward return T+1 -> T+6
    price: str = fact("vwap", choices=("vwap", "close"))
    n_quantiles: int = fact(10, lo=2, integer=True)
    # winsorise at median +- 5 MAD (null: no winsorisation)
    mad_k: float | None = fact(5.0, lo=0, lo_open=True, nullable=True)
    neutralize: list[str] = field(default_factory=lambda: ["industry", "size"])
    ic_decay_horizons: list[int] = field(default_factory=lambda: [1, 5, 10, 20])
    start: str | None = fact("2017-01-01", date=True, nullable=True)  # [C window]; clipped to the signal's dates
    end: str | None = fact("2024-09-30", date=True, nullable=True)
    min_listed_days: int = fact(63, lo=0, integer=True)
    style_diagnostics: bool = True  # the signal's per-date correlation with each style exposure
    # standalone: signal parquet, signal folder, training work dir, or MLflow run id
    input: str | None = fact(None, result=False)


@dataclass
class PortfolioConfig:
    min_index_weight: float = fact(0.80, lo=0, hi=1)
    max_active: float = fact(0.008, lo=0, lo_open=True, hi=1)
    industry_tol: float = fact(0.02, lo=0, lo_open=True)
    size_tol: float = fact(0.2, lo=0, lo_open=True)
    max_turnover: float = fact(0.30, lo=0, lo_open=True, hi=2)
    n_extra_candidates: int = fact(250, lo=0, integer=True)  # best-scored non-constituents added to the candidates [I]
    # where they come from: all = any traded A-share; neighbours = names of the index's size (float cap within the
    # constituents' range, listed >= 63 days, not ST), as enhanced funds hold out-of-index names
    extra_pool: str = fact("all", choices=("all", "neighbours"))
    # risk control (issue: style bets on real data). Empty / null = the AI-84 LP: only the size bound above
    style_bounds: dict[str, float] = field(default_factory=dict)  # |active exposure| per style (features.styles)
    # annualised ex-ante tracking error limit through the factor risk model
    te_target: float | None = fact(None, lo=0, lo_open=True, hi=0.5, nullable=True,
                                   fix="null (no risk model constraint) or an annualised tracking error in (0, 0.5], "
                                       "e.g. 0.05")
    # EWMA half-life (days) of factor covariance and specific variance [CNE5]
    risk_halflife: float = fact(90.0, lo=0, lo_open=True, fix="a number of days > 0")
    # days of factor returns before the backtest start that warm the risk model
    risk_history: int = fact(504, lo=63, integer=True)
    # volatility regime adjustment of the risk model (USE4 / CNE5): half-life (days) of the bias-statistic EWMA that
    # scales factor covariance and specific variance (quantsam.portfolio.risk.vra_multipliers); null = off
    risk_vra_halflife: float | None = fact(None, lo=0, lo_open=True, nullable=True,
                                           fix="null (off) or a number of days > 0")
    # the Newey-West serial-correlation term of the rebalance horizon in the factor covariance and the specific
    # variances (CNE5 / USE4; quantsam.portfolio.risk.RiskModel); 0 = off
    risk_nw_lags: int = fact(0, lo=0, integer=True, key_if_set=True)
    # statistical factors of the specific returns (principal components over risk_stat_window days) added to the
    # risk model: the co-movement of small-cap residuals the industries and styles miss; 0 = off
    risk_stat_factors: int = fact(0, lo=0, integer=True, key_if_set=True)
    risk_stat_window: int = fact(252, lo=21, integer=True, key_if_set=True)
    # the eigenfactor risk adjustment of the industry + style covariance (Menchero, Wang & Orr 2012; USE4 / CNE5):
    # its scale a (USE4: 1.2-1.4; quantsam.portfolio.risk.eigen_adjust) over risk_eigen_sims simulated histories;
    # 0 = off. An optimised portfolio's factor risk is under-forecast without it
    risk_eigen_scale: float = fact(0.0, lo=0, key_if_set=True)
    risk_eigen_sims: int = fact(100, lo=1, integer=True, key_if_set=True)
    # when a rebalance is infeasible: turnover_first frees turnover, then the risk bounds; graded widens the risk
    # bounds x1.5/x2/x3, then allows turnover x1.5/x2, then the same chain (quantsam.portfolio.problem.GRADED_STEPS)
    relax: str = fact("turnover_first", choices=("turnover_first", "graded"))
    # direct: the problem's matrices handed to HiGHS (LP) / Clarabel (SOCP) — fast (see quantsam.portfolio.direct);
    # cvxpy: the same model compiled once with parameters, solved by `solver` (then `fallback_solver`) — change it there
    backend: str = fact("direct", choices=("direct", "cvxpy"))
    solver: str = "CLARABEL"
    fallback_solver: str = "HIGHS"
    # the rebalance rule (issue 32): optimizer = the problem above (quantsam.portfolio.problem); top_n = the top_n
    # index members by score, equal weight; topk_dropout = top_n names held, at most n_drop of the worst swapped for the
    # best others per rebalance (qlib's TopkDropoutStrategy), new names equal-weighted with the freed weight
    rule: str = fact("optimizer", choices=("optimizer", "top_n", "topk_dropout"), key_if_set=True)
    top_n: int = fact(50, lo=1, integer=True, key_if_set=True)
    n_drop: int = fact(5, lo=0, integer=True, key_if_set=True)
    # the optimiser's objective: score = maximise score' w (AI-84); alpha = maximise alpha' w - cost_aversion x
    # backtest.cost_per_side x two-sided turnover, alpha = IC x specific vol over the holding period x z-score with the
    # IC from past periods only (quantsam.portfolio.alpha; needs te_target: the risk model's specific variances)
    objective: str = fact("score", choices=("score", "alpha"), key_if_set=True)
    cost_aversion: float = fact(1.0, lo=0, key_if_set=True, fix="a number >= 0 (0: costs not in the objective)")
    alpha_ic_prior: float = fact(0.03, lo=-1, hi=1, key_if_set=True)  # the IC assumed before the signal has a record
    alpha_ic_prior_weight: float = fact(8.0, lo=0, key_if_set=True)  # ... worth this many holding periods of record
    alpha_ic_window: int = fact(52, lo=1, integer=True, key_if_set=True)  # holding periods of record averaged


@dataclass
class BacktestConfig:
    rebalance_every: int = fact(5, lo=1, integer=True)
    fill_price: str = fact("vwap", choices=("vwap", "close", "open"))
    cost_per_side: float = fact(0.002, lo=0, hi=0.05)  # 0.2% per side on traded value [S]
    # extra cost on sold value (e.g. 0.0005); 0 = all in cost_per_side
    stamp_duty: float = fact(0.0, lo=0, hi=0.05)
    # e.g. 100 shares, with capital set
    lot_size: int | None = fact(None, lo=1, integer=True, nullable=True,
                                fix="null or an integer >= 1 (with backtest.capital)")
    capital: float | None = fact(None, lo=0, lo_open=True, nullable=True)
    start: str | None = fact("2016-12-30", date=True, nullable=True)
    end: str | None = fact("2024-09-30", date=True, nullable=True)
    # which indices (each index's numbers do not depend on the others)
    universes: list[str] = fact(factory=lambda: ["csi300", "csi500", "csi1000"], result=False)
    # the benchmark's basis: total_return = index weights (published, else float-cap within membership) x adjusted
    # returns, dividends reinvested, as the portfolio earns; price_index = the index's own daily series (no dividends)
    # price_plus_dividends = the published price index + the members' cash dividends on their ex-dates (from preclose),
    # weighted by the reconstruction: the index itself where a reconstruction tracks it loosely (CSI300/CSI1000)
    benchmark: str = fact("total_return", choices=("total_return", "price_index", "price_plus_dividends"))
    attribution: bool = True  # active return by industry, style, specific and costs (needs the styles)
    # standalone: signal parquet, signal folder, training work dir or MLflow run id
    input: str | None = fact(None, result=False)
    # the indices not yet done run in this many spawned processes of one thread each (same numbers; not in the key):
    # on 2 cores, 2 overlaps CSI1000's backtest with CSI300's and CSI500's
    workers: int = fact(1, lo=1, integer=True, result=False,
                        fix="an integer >= 1 (processes backtesting the indices side by side)")


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
    landscape_grid: int = fact(9, lo=2, integer=True)  # grid points per axis
    landscape_span: float = 1.0  # grid covers [-span, span] x the trajectory's extent on each PCA axis
    landscape_names: int = fact(200, lo=3, integer=True)  # names per date in the landscape / sharpness samples
    landscape_days: int = fact(12, lo=1, integer=True)  # dates (evenly spaced) from the training / test period
    sharpness_rho: float = fact(0.05, lo=0, lo_open=True)  # radius of the rho-ball sharpness
    power_iters: int = fact(10, lo=1, integer=True)  # Hessian power iterations


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
