"""scripts/real_study.py's bookkeeping of downstream code: an arm whose signal / factor test / backtest code changed
since its record is rerun with ``+rerun=[...]`` naming exactly those stages (cached stage results are served across
code changes, so without it the committed arms would mix code versions)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from quantsam import stageio


def _script():
    path = Path(__file__).resolve().parents[2] / "scripts" / "real_study.py"
    spec = importlib.util.spec_from_file_location("real_study", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_stale_downstream_stages_are_named_for_rerun():
    rs = _script()
    stages = rs.downstream_stages()
    assert list(stages) == ["signal", "factor_test", "backtest"]
    assert all(stageio.rerun_requested([name], name) for name in stages)  # names +rerun accepts
    current = {k: stageio.code_version(*mods) for k, mods in stages.items()}
    assert rs.stale_stages(current, current) == []
    assert rs.stale_stages({}, current) == list(stages)  # an arm recorded before versions were kept
    assert rs.stale_stages({**current, "backtest": "old"}, current) == ["backtest"]
