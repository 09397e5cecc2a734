"""Structured-config schemas: one dataclass per config group (the YAML files in ``conf/<group>/`` fill them).

Validation (:mod:`quantsam.config.validate`) merges each group's YAML into its schema key by key, so every unknown key,
wrong type and out-of-range value is listed together with its fix before any heavy work starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DataConfig:
    source: str = "synthetic"  # synthetic | tidy | qlib | dir
    seed: int = 0
    n_stocks: int = 2000
    start: str | None = "2014-01-01"
    end: str | None = "2024-09-30"
    n_industries: int = 30
    signal_strength: float = 1.0
    dir: str = "data/synthetic"
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
    min_listed_days: int = 63
    exclude_st: bool = True
    train_on_members: bool = False


@dataclass
class FeaturesConfig:
    fields: list[str] = field(default_factory=lambda: ["open", "high", "low", "close", "vwap", "volume"])
    daily_window: int = 30
    weekly_window: int = 30
    label_horizon: int = 10
    label_price: str = "close"


@dataclass
class ModelConfig:
    name: str = "gru"
    input_size: int = 6
    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.0
    frequencies: list[str] = field(default_factory=lambda: ["daily", "weekly"])


@dataclass
class TrainerConfig:
    max_epochs: int = 100
    patience: int = 10
    loss: str = "ic"
    sample_every: int = 5
    max_names_per_batch: int | None = None
    shuffle_dates: bool = True
    train_days: int = 1512
    valid_days: int = 504
    test_days: int = 126
    purge_days: int = 10
    test_start: str = "2017-01-01"
    test_end: str | None = None
    max_windows: int | None = None
    n_seeds: int = 3
    grad_clip: float | None = None
    device: str = "auto"
    num_threads: int | None = None
    progress: Any = "auto"
    checkpoint: bool = True
    cache_mb: float = 1024.0
    save_trajectory: str = "first"


@dataclass
class SignalConfig:
    method: str = "equal_weight"
    models: list[str] = field(default_factory=lambda: ["daily", "weekly"])


@dataclass
class FactorTestConfig:
    rebalance_every: int = 5
    horizon: int = 5
    price: str = "vwap"
    n_quantiles: int = 10
    mad_k: float = 5.0
    neutralize: list[str] = field(default_factory=lambda: ["industry", "size"])
    ic_decay_horizons: list[int] = field(default_factory=lambda: [1, 5, 10, 20])
    start: str | None = "2017-01-01"
    end: str | None = "2024-09-30"
    min_listed_days: int = 63
    input: str | None = None  # standalone: signal parquet, training work dir, or MLflow run id


@dataclass
class PortfolioConfig:
    min_index_weight: float = 0.80
    max_active: float = 0.008
    industry_tol: float = 0.02
    size_tol: float = 0.2
    max_turnover: float = 0.30
    n_extra_candidates: int = 250
    solver: str = "CLARABEL"
    fallback_solver: str = "HIGHS"


@dataclass
class BacktestConfig:
    rebalance_every: int = 5
    fill_price: str = "vwap"
    cost_per_side: float = 0.002
    stamp_duty: float = 0.0
    lot_size: int | None = None
    capital: float | None = None
    start: str | None = "2016-12-30"
    end: str | None = "2024-09-30"
    universes: list[str] = field(default_factory=lambda: ["csi300", "csi500", "csi1000"])
    input: str | None = None


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str = "sqlite:///mlruns.db"
    artifact_root: str = "mlartifacts"
    experiment: str = "quantsam"


@dataclass
class ReportConfig:
    on_sweep_end: bool = True
    sweep_dir: str | None = None
    landscape: bool = True
    landscape_vs: str = "gsam"
    landscape_grid: int = 9
    landscape_span: float = 1.0
    landscape_names: int = 200
    landscape_days: int = 12
    sharpness_rho: float = 0.05
    power_iters: int = 10


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
