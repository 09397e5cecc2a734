"""Factor tests: vectorised IC/RankIC, qcut-style layers, TOP layer vs equal weight (see :mod:`.report`)."""

from quantsam.factor_test.frames import ic, quantile_returns, rank_ic
from quantsam.factor_test.report import FactorReport, factor_report

__all__ = ["FactorReport", "factor_report", "ic", "quantile_returns", "rank_ic"]
