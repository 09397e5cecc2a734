"""Index-enhanced portfolios: the cvxpy problem compiled once with parameters (:class:`IndexEnhancedProblem`)."""

from quantsam.portfolio.problem import IndexEnhancedProblem, PortfolioResult

__all__ = ["IndexEnhancedProblem", "PortfolioResult"]
