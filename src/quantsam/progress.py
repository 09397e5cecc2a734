"""Progress bars on a terminal only: one bar per stage (training units with the epoch in the postfix, backtest
rebalances), nothing in logs or CI. Parallel sweep jobs each get their own line."""

from __future__ import annotations

import sys
from typing import Any


def bar(total: int, desc: str, enabled: Any = "auto", position: int | None = None):
    """A tqdm bar, shown when ``enabled`` is true, or — for ``"auto"`` — when stderr is a terminal."""
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if enabled == "auto" else not bool(enabled)
    return tqdm(total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True, position=position)
