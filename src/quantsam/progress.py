"""Signs of life for long stages: a tqdm bar on a terminal (training units with the epoch in the postfix, backtest
rebalances; parallel sweep jobs each get their own line); without a terminal (CI, ``nohup``, a pipe) a log line at
most every ``LOG_EVERY`` seconds — stage, done/total, elapsed and ETA — so a 20-minute stage never looks hung.
Child processes whose log records go to their parent's log (backtest lanes) always write log lines
(:func:`log_lines_only`): a bar drawn by a child would never reach the log."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger("quantsam.progress")

LOG_EVERY = 30.0  # seconds between two progress lines when stderr is not a terminal
_LOG_ONLY = False  # set in a child process that logs through its parent (log_lines_only)


def log_lines_only(every: float | None = None) -> None:
    """In this process, ``bar("auto")`` writes log lines, terminal or not (every ``every`` s, default LOG_EVERY)."""
    global _LOG_ONLY, LOG_EVERY
    _LOG_ONLY = True
    if every is not None:
        LOG_EVERY = float(every)


class LogProgress:
    """The part of tqdm's interface the stages use (``update``, ``set_postfix``, ``close``), as throttled log lines."""

    def __init__(self, total: int, desc: str, every: float | None = None, clock=time.monotonic):
        self.total, self.desc, self.clock = int(total), desc, clock
        self.every = float(LOG_EVERY if every is None else every)
        self.n, self.postfix = 0, ""
        self.t0 = self.last = clock()

    def set_postfix(self, **kw) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in kw.items())
        self._maybe_log()

    def update(self, n: int = 1) -> None:
        self.n += n
        self._maybe_log()

    def line(self) -> str:
        el = self.clock() - self.t0
        eta = el / self.n * (self.total - self.n) if self.n else float("nan")
        eta_s = f"ETA {eta / 60:.1f} min" if self.n else "ETA ?"
        extra = f" ({self.postfix})" if self.postfix else ""
        return f"{self.desc}: {self.n}/{self.total} done, {el / 60:.1f} min elapsed, {eta_s}{extra}"

    def _maybe_log(self) -> None:
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            log.info(self.line())

    def close(self) -> None:
        pass


def bar(total: int, desc: str, enabled: Any = "auto", position: int | None = None):
    """A tqdm bar when ``enabled`` is true or — for ``"auto"`` — when stderr is a terminal; otherwise (``"auto"``
    without a terminal) a :class:`LogProgress`; ``enabled=false`` silences both."""
    from tqdm.auto import tqdm

    if enabled == "auto" and (_LOG_ONLY or not sys.stderr.isatty()):
        return LogProgress(total, desc)
    return tqdm(total=total, desc=desc, disable=not bool(enabled) if enabled != "auto" else False, leave=False,
                dynamic_ncols=True, position=position)


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process, of its children that have ended, and of its live descendants
    (read from ``/proc``: a launcher's worker pool is still alive when a sweep ends) — what a run cost the machine,
    printed beside its wall time. Linux; elsewhere this process and its ended children only."""
    import os
    import resource
    from pathlib import Path

    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime
    proc = Path("/proc")
    if not proc.is_dir():
        return total
    tick = os.sysconf("SC_CLK_TCK")
    kids: dict[int, list[tuple[int, float]]] = {}
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        kids.setdefault(int(f[1]), []).append((int(d.name), (int(f[11]) + int(f[12])) / tick))
    todo = [os.getpid()]
    while todo:
        for pid, cpu in kids.get(todo.pop(), []):
            total += cpu
            todo.append(pid)
    return total
