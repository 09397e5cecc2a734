"""Factor tests: vectorised IC/RankIC, qcut-exact layers, TOP layer vs equal weight (:func:`analyze`)."""

from quantsam.factor_test.analysis import FactorTestResult, analyze
from quantsam.factor_test.frames import ic, quantile_returns, rank_ic

__all__ = ["FactorTestResult", "analyze", "ic", "quantile_returns", "rank_ic"]
