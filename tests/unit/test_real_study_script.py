"""scripts/real_study.py's bookkeeping of downstream code: an arm whose signal / factor test / backtest code changed
since its record is rerun with ``+rerun=[...]`` naming exactly those stages (cached stage results are served across
code changes, so without it the committed arms would mix code versions)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from quantsam import stageio


def _script(name: str = "real_study"):
    """A script of ``scripts/`` imported as a module."""
    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
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


def test_arm_plan_is_the_a_priori_plan_and_the_check_compares_it_with_the_measured_cpu(tmp_path):
    from tests.cli import isolated

    plan = _script().arm_plan("smoke", "gsam", list(isolated(tmp_path)))
    # no fit of the arm exists yet: the expected epochs are min(max_epochs, patience + 2) of the smoke experiment
    from quantsam.config import compose

    cfg = compose(["experiment=smoke", *isolated(tmp_path)])
    assert plan["expected_epochs"] == min(cfg.trainer.max_epochs, cfg.trainer.patience + 2)
    assert plan["cpu_h_max"] >= plan["cpu_h"] > 0 and plan["train_us_per_name_step"] > 0
    book = {"a": {"plan": {"cpu_h": 1.0, "cpu_h_max": 1.2, "expected_epochs": 4.0}, "train_cpu_s": 3600.0,
                  "predict_cpu_s": 1080.0, "units": 2, "epochs": 9},  # 1.3 CPU-h: +30%, the edge of the band
            "b": {"plan": {"cpu_h": 1.0, "cpu_h_max": 1.2, "expected_epochs": 4.0}, "train_cpu_s": 5040.0,
                  "units": 2, "epochs": 8},  # 1.4 CPU-h
            "c": {"train_cpu_s": 10.0}}  # finished before plans were recorded: no row
    df = _script("real_results").plan_check(book)
    assert list(df.index) == ["a", "b"]
    assert df.loc["a", "measured / plan - 1"] == "+30.0%" and df.loc["a", "within +-30%"] == "yes"
    assert df.loc["b", "within +-30%"] == "no" and df.loc["a", "epochs per fit (plan / measured)"] == "4.0 / 4.50"


def test_commit_results_commits_the_results_folder_and_nothing_else(tmp_path):
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "README.md").write_text("a\n")
    git("add", "README.md")
    git("commit", "-q", "-m", "init")
    res = tmp_path / "docs" / "results" / "s"
    res.mkdir(parents=True)
    (res / "summary.json").write_text("{}\n")
    (tmp_path / "README.md").write_text("b\n")
    git("add", "README.md")  # someone's staged work: must stay staged, uncommitted
    (tmp_path / "other.txt").write_text("x\n")  # untracked: must stay untracked
    rs = _script()
    assert rs.commit_results(tmp_path, res, "s: arm landed") is True
    assert git("log", "-1", "--format=%s").strip() == "s: arm landed"
    assert git("show", "--name-only", "--format=", "HEAD").split() == ["docs/results/s/summary.json"]
    status = git("status", "--porcelain")
    assert "M  README.md" in status and "?? other.txt" in status
    assert rs.commit_results(tmp_path, res, "again") is False  # nothing changed: no empty commit


def test_a_finished_arm_on_the_current_code_is_skipped_and_any_change_runs_it(tmp_path):
    up_to_date = _script().up_to_date
    (tmp_path / "job0").mkdir()
    (tmp_path / "job0" / "result.json").write_text("{}")
    rec = {"train_code": "t1", "finished": "2026-12-04 21:59:47"}
    assert up_to_date(rec, [], "t1", tmp_path)
    assert not up_to_date(None, [], "t1", tmp_path)  # never finished
    assert not up_to_date(rec, ["backtest"], "t1", tmp_path)  # a downstream stage's code changed
    assert not up_to_date(rec, [], "t2", tmp_path)  # the training code changed
    assert not up_to_date(rec, [], "t1", tmp_path / "missing")  # its sweep folder is gone


def test_a_started_arm_keeps_its_first_plan_and_is_neither_done_nor_up_to_date(tmp_path):
    """An arm's record holds only its plan from its first start until it finishes: a restart of the study reuses that
    plan (not one re-calibrated at whatever load the restart meets), and the arm counts as neither up to date nor
    finished (scripts/real_results.py is not pointed at its half-trained sweep)."""
    rs = _script()
    sweep = tmp_path / "sam"
    (sweep / "0").mkdir(parents=True)
    (sweep / "0" / "result.json").write_text("{}")
    started = {"plan": {"cpu_h": 1.85}}
    assert not rs.finished(started) and not rs.up_to_date(started, [], "code", sweep)
    done = {**started, "finished": "2026-12-04 23:59:00", "train_code": "code"}
    assert rs.finished(done) and rs.up_to_date(done, [], "code", sweep)
    assert rs.arms_done({"adamw": done, "sam": started}, ["adamw", "sam", "gam"], tmp_path) == []  # no adamw sweep
    (tmp_path / "adamw").mkdir()
    assert rs.arms_done({"adamw": done, "sam": started}, ["adamw", "sam", "gam"], tmp_path) == ["adamw"]


def test_answers_table_has_a_row_per_arm_with_its_differences_from_adamw():
    """answers.md (the README's per-arm table) from a hand-built summary: weekly differences are shown per year
    (x 52, in %: a weekly mean of 0.0002616 is +1.36 %/yr), the baseline has none, a missing test shows a dash."""
    sig = {"test.rank_ic_mean": 0.091, **{f"test_{u}.rank_ic_mean": 0.05 for u in ("csi300", "csi500", "csi1000")}}
    arm = {"signal": sig, "factor_test_weekly": {"rank_ic_mean": 0.069, "top_excess_ann": 0.107}, "grad_evals": 72540.0,
           "indices": {u: {"excess_ann": 0.019, "info_ratio": 0.4} for u in ("csi300", "csi500", "csi1000")}}
    tests = [{"arm": "gsam", "difference": "test RankIC (window x seed)", "mean": 0.004173, "t p": 0.1359,
              "MDE (80% power)": 0.007892},
             {"arm": "gsam", "difference": "csi300 weekly excess (week)", "mean": 0.0002616, "t p": 0.2147,
              "MDE (80% power)": 0.0005916}]
    doc = {"arms": {"adamw": arm, "gsam": arm}, "paired_tests_vs_adamw": tests,
           "plan_check": {"gsam": {"plan CPU-h (expected)": 2.029, "measured CPU-h": 2.31, "measured / plan - 1": "+13.9%"}}}
    rows = _script("real_results").answers_md(doc).splitlines()
    assert len(rows) == 4 and rows[2].startswith("| adamw | 72.5k | — |") and rows[2].count("(baseline)") == 2
    g = rows[3]
    assert "| 2.03 → 2.31 (+13.9%) |" in g and "| 0.069 / +10.7% |" in g and "+1.9 (0.40) / +1.9 (0.40)" in g
    assert "| +0.0042 (0.14; 0.0079) |" in g
    assert g.endswith("| +1.4 / — / — (0.21 / — / —; 3.1 / — / —) |")  # csi500 / csi1000 tests missing here


def test_readme_per_arm_table_is_the_committed_answers():
    """The README's real-study table is ``docs/results/real_arms/answers.md`` as committed (copied, not retyped)."""
    root = Path(__file__).resolve().parents[2]
    answers = root / "docs" / "results" / "real_arms" / "answers.md"
    if not answers.exists():
        pytest.skip("no real-study results committed")
    table = answers.read_text().strip().splitlines()
    readme = (root / "README.md").read_text().splitlines()
    start = readme.index(table[0])
    assert readme[start:start + len(table)] == table
    assert not readme[start + len(table)].startswith("|"), "the README's table has rows answers.md lacks"
