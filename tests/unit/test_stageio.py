"""stageio's in-place ritual on hand-made cases: a killed writer's temporaries are cleaned, a live one's kept; the
manifest is written last and a failed compute leaves no 'done' state; a held lock gives 'busy' without waiting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from quantsam import stageio


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = tmp_path / f".model.pt.tmp-{_dead_pid()}-abc123"
    live = tmp_path / f".model.pt.tmp-{os.getpid()}-def456"
    dead_dir = tmp_path / f".factor.tmp-{_dead_pid()}-0a0b0c"
    dead.write_bytes(b"half")
    live.write_bytes(b"writing")
    dead_dir.mkdir()
    (tmp_path / "model.pt").write_bytes(b"kept")
    assert stageio.remove_stale_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "model.pt"])


def test_run_in_place_manifest_last_busy_and_reuse(tmp_path):
    out, man = tmp_path / "a.txt", tmp_path / "a.json"

    def compute():
        out.write_text("x")
        return [out], "made"

    def failing():
        out.write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        stageio.run_in_place("s", "k1", failing, lock=tmp_path / "a", manifest=man)
    assert not man.exists()  # no 'done' state over a partial output
    assert stageio.run_in_place("s", "k1", compute, lock=tmp_path / "a", manifest=man).status == "computed"
    again = stageio.run_in_place("s", "k1", compute, lock=tmp_path / "a", manifest=man, on_reuse=lambda: "found")
    assert (again.status, again.result) == ("reused", "found")
    assert stageio.run_in_place("s", "k2", compute, lock=tmp_path / "a", manifest=man).status == "computed"  # new key
    from filelock import FileLock

    with FileLock(str(tmp_path / "a") + ".lock"):
        assert stageio.run_in_place("s", "k3", compute, lock=tmp_path / "a", manifest=man, wait=False).status == "busy"


def test_rerun_names_the_stages_it_recomputes_and_run_cached_obeys(tmp_path):
    """``+rerun=true`` recomputes every stage, ``+rerun=backtest`` / ``+rerun=[signal,backtest]`` only those named;
    a forced folder stage computes over its finished folder (the served-with-a-warning path is skipped)."""
    from dataclasses import dataclass

    assert stageio.rerun_requested(True, "train") and stageio.rerun_requested("true", "backtest")
    assert stageio.rerun_requested("backtest", "backtest") and not stageio.rerun_requested("backtest", "train")
    assert stageio.rerun_requested(["signal", "backtest"], "signal")
    assert not stageio.rerun_requested(None, "signal") and not stageio.rerun_requested(False, "signal")

    @dataclass
    class Result:
        n: int
        summary: dict

        def save(self, path):
            (path / "n.txt").write_text(str(self.n))

    stage = stageio.Stage("toy", 1, ("stageio",))
    calls = []

    def compute():
        calls.append(1)
        return Result(len(calls), {"n": len(calls)})

    first = stageio.run_cached(stage, tmp_path / "toy", "k", compute)
    again = stageio.run_cached(stage, tmp_path / "toy", "k", compute)
    assert stageio.run_cached(stage, tmp_path / "toy", "k", compute, rerun="backtest").skipped  # another stage
    forced = stageio.run_cached(stage, tmp_path / "toy", "k", compute, rerun=["signal", "toy"])
    assert (first.skipped, again.skipped, forced.skipped) == (False, True, False)
    assert (tmp_path / "toy" / "n.txt").read_text() == "2" and forced.summary == {"n": 2}
    assert stageio.run_cached(stage, tmp_path / "toy", "k", compute).skipped and len(calls) == 2  # the new one is done
