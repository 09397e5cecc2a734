"""Config facts written once in the schema (``config/schema.py: Fact``): the checks and fixes they give, on
hand-derived cases, and the cache-key facts the stages read (the sets the stages listed by hand before)."""

from __future__ import annotations

import math

from quantsam.config.schema import Fact, key_if_set, non_result_keys


def test_ranges_choices_dates_and_their_fixes():
    closed = Fact(lo=0, hi=0.05)
    assert closed.ok(0) and closed.ok(0.05) and not closed.ok(0.0500001) and closed.describe() == "in [0, 0.05]"
    half_open = Fact(lo=0, lo_open=True, hi=2)
    assert not half_open.ok(0) and half_open.ok(2) and not half_open.ok(math.nan) and not half_open.ok("1")
    assert half_open.describe() == "in (0, 2]"
    assert Fact(lo=0, hi=1, hi_open=True).describe() == "in [0, 1)"
    count = Fact(lo=20, integer=True)
    assert count.ok(20) and not count.ok(20.0) and not count.ok(True) and count.describe() == "an integer >= 20"
    assert Fact(lo=1, hi=30, integer=True).describe() == "an integer in [1, 30]"
    assert Fact(lo=0).describe() == "a finite number >= 0" and not Fact(lo=0).ok(math.inf)
    nullable = Fact(lo=0, lo_open=True, nullable=True)
    assert nullable.ok(None) and not Fact(lo=0).ok(None) and nullable.describe() == "null or a finite number > 0"
    three = Fact(choices=("auto", True, False))
    assert three.ok("auto") and three.ok(False) and not three.ok("yes") and three.describe() == "auto, true or false"
    assert Fact(choices=("close", "vwap")).describe() == "close or vwap"
    day = Fact(date=True, nullable=True)
    assert day.ok("2020-02-29") and day.ok(None) and not day.ok("2020-13-45")
    assert day.describe() == "a date (YYYY-MM-DD) or null"
    assert Fact(lo=0, hi=0.2, fix="a probability in [0, 0.2]").describe() == "a probability in [0, 0.2]"


def test_cache_key_facts_are_the_sets_the_stages_listed_by_hand():
    """The keys each stage left out of its cache key before the facts existed (train/stage.py's NON_RESULT_TRAINER,
    backtest_key's pops, factor_test_key's pop) and the keys added after work was done — unchanged, so every
    finished result keeps its key."""
    assert set(non_result_keys("trainer")) == {"progress", "num_threads", "checkpoint", "cache_mb", "save_trajectory",
                                                "device", "windows", "models", "seeds", "device_data",
                                                "deterministic", "workers"}
    assert set(non_result_keys("backtest")) == {"input", "universes", "workers"}
    assert non_result_keys("factor_test") == ("input",)
    assert set(key_if_set("trainer")) == {("precision", "fp32"), ("valid_names", None)}
    assert key_if_set("features") == (("normalize", "zscore"),)
