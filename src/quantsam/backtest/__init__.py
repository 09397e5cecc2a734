"""VWAP backtest with A-share trading rules and the index-enhanced runner."""

from quantsam.backtest.engine import MarketArrays, SimResult, simulate
from quantsam.backtest.runner import BacktestResult, run_index_enhanced

__all__ = ["BacktestResult", "MarketArrays", "SimResult", "run_index_enhanced", "simulate"]
