"""Without a terminal, long stages log a progress line at most every 30 s (stage, done/total, ETA)."""

from __future__ import annotations

import logging

from quantsam import progress


def test_log_progress_throttles_and_estimates(caplog):
    t = [0.0]
    p = progress.LogProgress(10, "train adamw", every=30, clock=lambda: t[0])
    with caplog.at_level(logging.INFO, logger="quantsam.progress"):
        for _ in range(4):
            t[0] += 10
            p.update(1)
        p.set_postfix(epoch=2, vric="0.0500")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["train adamw: 3/10 done, 0.5 min elapsed, ETA 1.2 min"]  # at t=30: one line, not four
    assert "epoch 2, vric 0.0500" in p.line() and "4/10" in p.line()


def test_bar_logs_instead_of_drawing_without_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert isinstance(progress.bar(5, "backtest csi500"), progress.LogProgress)
    assert not isinstance(progress.bar(5, "x", enabled=False), progress.LogProgress)


def test_tree_cpu_seconds_counts_a_live_child():
    """A child still running when the sweep ends (a launcher's worker pool) is counted from /proc."""
    import subprocess
    import sys
    import time

    before = progress.tree_cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.process_time()\nwhile time.process_time()-t<0.6: pass\n"
                              "time.sleep(30)"])
    try:
        deadline = time.time() + 20  # on a loaded machine the child may need longer for its 0.6 CPU-s
        while progress.tree_cpu_seconds() - before < 0.5 and time.time() < deadline:
            time.sleep(0.2)
        assert progress.tree_cpu_seconds() - before >= 0.5
    finally:
        child.kill()
        child.wait()
