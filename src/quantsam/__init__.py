"""quantsam: do sharpness-aware optimizers make deep price-volume factor models generalize better?

Stages (each a plain ``run_<stage>(cfg, ...)`` reading the previous stage's artifacts):
data -> features -> train -> signals -> factor_test -> portfolio -> backtest -> report.
"""

__version__ = "0.1.0"
