"""The project's error hierarchy: every message names the file/column/config key and says how to fix it."""

from __future__ import annotations


class QuantsamError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class DataError(QuantsamError, ValueError):
    """Input data violates the data contract (see :mod:`quantsam.data.contract`)."""


class ConfigError(QuantsamError, ValueError):
    """A composed config has bad keys or values; the message lists every problem with its fix."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        text = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the config:\n{text}")

    def __reduce__(self):  # survive pickling across process launchers (joblib/loky, submitit)
        return (type(self), (self.problems,))


class DiskFullError(QuantsamError, OSError):
    """A write failed for lack of room (ENOSPC, or EDQUOT: over quota): the message names the file and the fix."""


class InfeasibleError(QuantsamError, RuntimeError):
    """A portfolio problem stayed infeasible after the relaxation chain."""


class SolverFailure(QuantsamError, RuntimeError):
    """A portfolio solve failed numerically (not infeasible): nothing is relaxed on its account."""
