"""Index-enhanced portfolios: the cvxpy problem compiled once with parameters (:class:`IndexEnhancedProblem`)."""

from quantsam.portfolio.problem import Constraints, IndexEnhancedProblem, PortfolioResult

__all__ = ["Constraints", "IndexEnhancedProblem", "PortfolioResult"]
