"""Write a real study's results into the repository: ``docs/results/<name>/`` gets the study report as Markdown with
its figures (the same report ``make report`` renders), a table of each arm's return attribution and active style
exposures, the paired tests with their power, a machine-readable ``summary.json`` (per arm and index: test RankIC /
ICIR / IC / kurtosis — all names and within each index —, weekly factor RankIC, TOP excess, excess, IR, TE and its
bias statistic, turnover, costs, seeds, windows, wall times), and a header with the command, the caveats and the
run's provenance.

    python scripts/real_results.py multirun/<date>/<time> --name real_cpu [--train-log <file>]
    python scripts/real_results.py multirun/real_arms/adamw multirun/real_arms/gsam --name real_arms

The sweep directory is what ``make study experiment=<name>`` wrote (the experiment is read from its
``multirun.yaml``); several sweep directories (one per arm, as ``scripts/real_study.py`` runs them) are read as one
study. Only results are written (tables of metrics, figures of NAVs and ICs) — no market data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from quantsam.report.collect import collect
from quantsam.report.render import md_table, write_report
from quantsam.report.tables import claims_text

ROOT = Path(__file__).resolve().parents[1]

CAVEATS_REAL_CPU = """\
**Read with care.** Trained on this 2-core CPU: all A-shares that pass the universe filters (point in time), at
most 500 random names per one-day batch, every 5th date, 3 y train + 1 y valid, <= 5 epochs with patience 2
(validation on a fixed 1,000-name subset per date), 3 seeds per model averaged — the source trains 6 y + 2 y for up
to 100 epochs with patience 10 (see `conf/experiment/real_cpu.yaml` for every cut and the README for the measurements
behind them). {n_windows} half-yearly windows are the only replication beyond the seeds (paired tests over
window x seed; their power is stated below). Float shares after 2022-01-14 are carried forward split-adjusted (the
shared data has none), amounts after that date are missing, so VWAP fills use the (high + low + close) / 3 proxy from
2022-01-17 on; the ST flag is unknown after 2022-01-14 (names are treated as not ST). Benchmarks (total return: index
weights x adjusted returns, dividends reinvested): CSI500 with its published daily weights; CSI300 and CSI1000 with
float-cap weights within their point-in-time members (no weight history exists in the shared data), so their
excess is against an approximation of the index. Constraints were relaxed on {relaxed} of the weekly rebalances
(`portfolio.relax=graded`).
"""

CAVEATS = """\
**Read with care.** One seed per arm; the rolling windows are the only replication (paired tests over {n_windows}
windows have little power); training is CPU-sized (index members only, 3 y train + 1 y valid, <= 3 epochs — see
`conf/experiment/real_csi500_cpu.yaml` for every cut); float shares after 2022-01-14 are carried forward
split-adjusted (the shared data has none), and amounts after that date are missing, so VWAP fills use the
(high + low + close) / 3 proxy from 2022-01-17 on; the ST flag is unknown after 2022-01-14 (names are treated as not
ST). The benchmark is the total-return CSI500 (published weights x adjusted returns); the excess against the price
index is shown beside it. The portfolio had to relax constraints on {relaxed} of the weekly rebalances
(`portfolio.relax=graded`: the risk bounds — size, styles, tracking error, industries — widened x1.5 / x2 / x3 before
any extra turnover, `GRADED_STEPS` in `quantsam.portfolio.problem`); read `attr_costs` beside `attr_excess`.
"""


def _attribution(jobs) -> pd.DataFrame:
    rows = {}
    for j in jobs:
        for u, s in (j.backtests or {}).items():
            keys = ["excess_ann", "excess_ann_vs_price_index", "tracking_error", "info_ratio", "ex_ante_te_mean", "te_bias",
                    "te_realised_over_forecast", "te_bias_factor", "te_bias_rest",
                    "turnover", "relaxed_share", "failed_share",
                    "attr_industry", *[k for k in s if k.startswith("attr_") and k not in (
                        "attr_industry", "attr_costs", "attr_specific", "attr_excess")],
                    "attr_costs", "attr_specific", "attr_excess",
                    *[k for k in s if k.startswith("active_")]]
            rows[f"{j.optimizer} s{j.seed} {u}"] = {k: s.get(k) for k in keys}
    return pd.DataFrame(rows)


def collect_all(sweeps: list[Path]):
    """The jobs of one or several sweep folders (one per arm), in the report's arm order."""
    from quantsam.optim import list_optimizers
    from quantsam.report.collect import FAMILIES

    jobs = [j for s in sweeps for j in collect(s)]
    rank = {n: i for i, n in enumerate(list_optimizers())}
    fam = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(jobs, key=lambda j: (fam.get(j.family, 9), rank.get(j.optimizer_name, 99), j.optimizer, j.seed))


def _num(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def summary(jobs, sweep: Path, power: pd.DataFrame, extra: dict) -> dict:
    """The machine-readable summary: per arm, the signal, factor-test and per-index backtest numbers; ``fits_wall_s``
    is the fits' wall seconds summed (MLflow ``cost/wall_s``: with two workers about twice the elapsed time; the CPU
    seconds are ``arms.json``'s ``train_cpu_s`` / ``predict_cpu_s``)."""
    arms = {}
    for j in jobs:
        t, f = j.train, j.factor
        sig = {k.replace("/", "."): _num(v) for k, v in t.items() if k.startswith(("test", "daily/test", "weekly/test", "raw_"))}
        arm = {"seed": j.seed, "n_seeds_per_model": None, "windows": len(j.splits),
               "test_period": [j.splits[0]["test"][0], j.splits[-1]["test"][1]] if j.splits else None,
               "signal": sig,
               "factor_test_weekly": {k: _num(f.get(k)) for k in (
                   "rank_ic_mean", "rank_icir", "ic_mean", "icir", "top_excess_ann", "top_ir", "top_turnover",
                   "long_short_ann", "score_kurtosis_median", "n_dates")},
               "indices": {}, "grad_evals": _num(t.get("cost/grad_evals")), "fits_wall_s": _num(t.get("cost/wall_s")),
               "stage_wall_s": {k: _num(v) for k, v in j.stage_seconds.items()}}
        if j.windows is not None:
            arm["n_seeds_per_model"] = int(j.windows["seed"].nunique())
        for u, b in j.backtests.items():
            arm["indices"][u] = {k: _num(b.get(k)) for k in (
                "excess_ann", "excess_ann_vs_price_index", "info_ratio", "tracking_error", "ex_ante_te_mean", "te_bias",
                "te_bias_band", "te_realised_over_forecast", "te_bias_factor", "te_bias_rest", "te_bias_vs_benchmark",
                "turnover", "attr_costs", "relaxed_share", "failed_share", "max_drawdown",
                "excess_max_drawdown", "ann_return", "bench_tr_ann_return")}
            arm["indices"][u]["benchmark_weights"] = j.notes.get(u, {}).get("benchmark_weights")
            arm["indices"][u]["benchmark"] = j.notes.get(u, {}).get("benchmark")
        arms[j.optimizer] = arm
    tests = []
    for _, r in power.iterrows():
        tests.append({"arm": r.iloc[0], "difference": r.iloc[1], **{k: _num(v) for k, v in r.iloc[2:].items()}})
    return {"sweep": sweep.name, "arms": arms, "paired_tests_vs_adamw": tests, **extra}


def headline_md(doc: dict) -> str:
    """The README's results table (one column per arm) from ``summary.json``'s numbers."""
    arms = doc["arms"]
    names = list(arms)

    def row(label, f):
        cells = []
        for n in names:
            try:
                cells.append(f(arms[n]))
            except (KeyError, TypeError):
                cells.append("—")
        return f"| {label} | " + " | ".join(cells) + " |"

    def p(v, d=1):
        return f"{100 * v:+.{d}f}%"

    lines = [f"| {arms[names[0]].get('n_seeds_per_model') or 1} seeds averaged per model | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names),
             row("test RankIC / ICIR / IC (daily, T+1→T+11 label, all names)", lambda a: (
                 f"{a['signal']['test.rank_ic_mean']:.3f} / {a['signal']['test.rank_icir']:.2f} / "
                 f"{a['signal']['test.ic_mean']:.3f}")),
             row("test RankIC within CSI300 / CSI500 / CSI1000 members", lambda a: " / ".join(
                 f"{a['signal'][f'test_{u}.rank_ic_mean']:.3f}" for u in ("csi300", "csi500", "csi1000"))),
             row("median per-date kurtosis of the raw scores (daily / weekly model)", lambda a: (
                 f"{a['signal']['raw_daily.test.kurtosis_median']:.1f} / "
                 f"{a['signal']['raw_weekly.test.kurtosis_median']:.1f}")),
             row("weekly factor test RankIC / ICIR / TOP-layer excess", lambda a: (
                 f"{a['factor_test_weekly']['rank_ic_mean']:.3f} / {a['factor_test_weekly']['rank_icir']:.2f} / "
                 f"{p(a['factor_test_weekly']['top_excess_ann'])}"))]
    for u in ("csi300", "csi500", "csi1000"):
        lines.append(row(f"{u.upper()} enhanced: excess vs benchmark / vs price index, IR", lambda a, u=u: (
            f"{p(a['indices'][u]['excess_ann'])} / {p(a['indices'][u]['excess_ann_vs_price_index'])}, "
            f"{a['indices'][u]['info_ratio']:+.2f}")))
    lines.append(row("TE realised / ex ante, bias statistic (CSI300 · CSI500 · CSI1000)", lambda a: " · ".join(
        f"{100 * a['indices'][u]['tracking_error']:.1f}/{100 * a['indices'][u]['ex_ante_te_mean']:.1f}, "
        f"{a['indices'][u]['te_bias']:.2f}" for u in ("csi300", "csi500", "csi1000"))))
    lines.append(row("weekly turnover (two-sided) / costs per year", lambda a: (
        f"{a['indices']['csi500']['turnover']:.2f} / {p(a['indices']['csi500']['attr_costs'])}")))
    lines.append(row("rebalances the solver failed on (held) CSI300 / CSI500 / CSI1000", lambda a: " / ".join(
        f"{100 * a['indices'][u].get('failed_share', float('nan')):.0f}%" for u in ("csi300", "csi500", "csi1000"))))
    for t in doc.get("paired_tests_vs_adamw", []):
        weekly = "weekly excess" in t["difference"]  # per week: also as %/yr (x 52), the scale of an excess return
        lines.append(f"\npaired vs AdamW ({t['arm']}, {t['difference']}): " + ", ".join(
            f"{k} {v:.4g}" + (f" ({100 * 52 * v:+.2f} %/yr)" if weekly and k in ("mean", "MDE (80% power)") else "")
            for k, v in t.items() if k not in ("arm", "difference") and isinstance(v, float)))
    return "\n".join(lines)


def answers_md(doc: dict) -> str:
    """The answer per arm, one row each (the README's table): signal and portfolio numbers, training cost against its
    plan, and the paired differences from AdamW with their p-values and 80%-power MDEs — from ``summary.json``."""
    idx = ("csi300", "csi500", "csi1000")
    tests = {(t["arm"], t["difference"]): t for t in doc.get("paired_tests_vs_adamw", [])}
    plans = doc.get("plan_check", {})

    def cells(arm: str, whats: list[str], key: str, scale: float = 1.0, fmt: str = ".2f") -> str:
        """``key`` of the paired tests of ``arm`` named ``whats``, scaled and formatted, joined by " / " (— if absent)."""
        vals = [tests.get((arm, w), {}).get(key) for w in whats]
        return " / ".join("—" if v is None else f"{scale * v:{fmt}}" for v in vals)

    weekly = [f"{u} weekly excess (week)" for u in idx]
    rows = ["| arm | grad evals | CPU-h: plan → measured | test RankIC: all (CSI300 / CSI500 / CSI1000) | weekly "
            "factor RankIC / TOP excess | `cost_aware` excess %/yr (IR): CSI300 / CSI500 / CSI1000 | test RankIC "
            "− AdamW (t p; MDE) | weekly excess − AdamW, %/yr: CSI300 / CSI500 / CSI1000 (t p; MDE %/yr) |",
            "|---|" + "---|" * 7]
    for arm, a in doc["arms"].items():
        sig, ft = a["signal"], a["factor_test_weekly"]
        pl = plans.get(arm, {})
        cost = (f"{pl['plan CPU-h (expected)']:.2f} → {pl['measured CPU-h']:.2f} ({pl['measured / plan - 1']})"
                if pl else "—")
        ric = (f"{sig['test.rank_ic_mean']:.3f} (" + " / ".join(f"{sig[f'test_{u}.rank_ic_mean']:.3f}" for u in idx)
               + ")")
        port = " / ".join(f"{100 * a['indices'][u]['excess_ann']:+.1f} ({a['indices'][u]['info_ratio']:.2f})"
                          for u in idx)
        if arm == "adamw":
            d_ric = d_week = "(baseline)"
        else:
            what = "test RankIC (window x seed)"
            d_ric = (f"{cells(arm, [what], 'mean', fmt='+.4f')} ({cells(arm, [what], 't p')}; "
                     f"{cells(arm, [what], 'MDE (80% power)', fmt='.4f')})")
            d_week = (cells(arm, weekly, "mean", 5200, "+.1f")
                      + f" ({cells(arm, weekly, 't p')}; {cells(arm, weekly, 'MDE (80% power)', 5200, '.1f')})")
        rows.append(f"| {arm} | {a['grad_evals'] / 1e3:,.1f}k | {cost} | {ric} | {ft['rank_ic_mean']:.3f} / "
                    f"{100 * ft['top_excess_ann']:+.1f}% | {port} | {d_ric} | {d_week} |")
    return "\n".join(rows)


def plan_check(book: dict) -> pd.DataFrame:
    """Per arm of ``arms.json``: ``plan``'s a-priori estimate of its training CPU-hours (recorded at the arm's start)
    against what its fits and test predictions measured (``train_cpu_s + predict_cpu_s``), and its epochs per fit
    against the plan's expectation — the +-30% check of issue 30."""
    rows = {}
    for arm, b in book.items():
        p = b.get("plan")
        if not p or "train_cpu_s" not in b:
            continue
        measured = (b["train_cpu_s"] + b.get("predict_cpu_s", 0.0)) / 3600.0
        rows[arm] = {"plan CPU-h (expected)": p["cpu_h"], "plan CPU-h (max epochs)": p["cpu_h_max"],
                     "measured CPU-h": round(measured, 3), "measured / plan - 1": f"{measured / p['cpu_h'] - 1:+.1%}",
                     "within +-30%": "yes" if round(abs(measured / p["cpu_h"] - 1), 4) <= 0.30 else "no",
                     "epochs per fit (plan / measured)": f"{p['expected_epochs']:.1f} / {b['epochs'] / b['units']:.2f}",
                     "load at calibration": p.get("load_avg_1min")}
    return pd.DataFrame(rows).T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("sweep", nargs="+", help="the sweep directory (or one per arm)")
    ap.add_argument("--experiment", default=None, help="default: read from the first sweep's multirun.yaml")
    ap.add_argument("--out", default=None, help="write here instead of docs/results/<name>")
    ap.add_argument("--name", default=None, help="docs/results/<name> (default: the sweep's experiment)")
    ap.add_argument("--wall", action="append", default=[], metavar="STEP=SECONDS",
                    help="measured wall time of a step of the run (repeatable), recorded in summary.json")
    ap.add_argument("--code", default=None, help="the commit the run was made with (default: this checkout's HEAD)")
    a = ap.parse_args()
    sweeps = [Path(x) for x in a.sweep]
    sweep = sweeps[0]
    mr = OmegaConf.load(sweep / "multirun.yaml") if (sweep / "multirun.yaml").exists() else None
    experiment = a.experiment or next((o.split("=", 1)[1] for o in (mr.hydra.overrides.task if mr is not None else [])
                                       if o.startswith("experiment=")), "real_csi500_cpu")
    a.name = a.name or experiment
    out = Path(a.out) if a.out else ROOT / "docs" / "results" / a.name
    jobs = collect_all(sweeps)
    rep = write_report(jobs, sweep, out_dir=out)
    power, claims = rep.tables["power"], rep.tables["claims"]  # computed once, by the report
    (out / "report.html").unlink(missing_ok=True)  # the Markdown + PNGs are what the repository keeps
    (out / "jobs.json").unlink(missing_ok=True)  # local paths
    attr = _attribution(jobs)
    sha = a.code or subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                   text=True).stdout
    n_windows = max(len(j.splits) for j in jobs) or "the"
    caveats = CAVEATS_REAL_CPU if experiment in ("real_cpu", "real_arms") else CAVEATS
    walls = {k: float(v) for k, v in (w.split("=", 1) for w in a.wall)}
    book_path = out / "arms.json"
    plans = plan_check(json.loads(book_path.read_text())) if book_path.exists() else pd.DataFrame()
    doc = summary(jobs, sweep, power, {"experiment": experiment, "code": sha.strip(), "measured_wall_s": walls,
                                       "plan_check": json.loads(plans.to_json(orient="index")) if len(plans) else {},
                                       "source_claims": {"answers": claims_text(claims),
                                                         "metrics": json.loads(claims.to_json(orient="records"))}})
    (out / "summary.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    head = [f"# Real study: `{a.name}`", "",
            ("Made by `make real-study` (`python scripts/real_study.py`: one pipeline sweep per arm, this folder "
             "rewritten after each arm; the commit and training-code version of each arm in [arms.json](arms.json)); "
             if len(sweeps) > 1 or experiment == "real_arms" else
             f"Made by `make study experiment={experiment}` and then "
             f"`python scripts/real_results.py <its multirun dir> --name {a.name}` (code at {sha.strip() or '?'}); ")
            + "machine-readable: [summary.json](summary.json).",
            "", caveats.format(n_windows=n_windows, relaxed=" / ".join(
                f"{100 * float(v):.0f}% ({' '.join(k.split()[::2])})" for k, v in attr.loc["relaxed_share"].items())),
            "", "## Paired tests and their power (each arm minus AdamW)", "",
            md_table(power.set_index("arm")) if len(power) else "(one arm only)", "",
            "## Plan against measured training cost (per arm)", "",
            ("`python -m quantsam plan experiment=<experiment> optimizer=<arm>` as it read at the arm's start with no "
             "fit of the arm yet (recorded in arms.json by `scripts/real_study.py`), against the CPU seconds the "
             "arm's fits and test predictions took. CPU seconds, not wall: the machine is shared."), "",
            md_table(plans) if len(plans) else "(no arm with a recorded plan yet)", "",
            "## Return attribution and active styles (annualised; arithmetic, so the parts add up to attr_excess)",
            "", md_table(attr), ""]
    body = rep.md_path.read_text().splitlines()
    rep.md_path.write_text("\n".join(head + body[1:]) + "\n")
    (out / "headline.md").write_text(headline_md(doc) + "\n")
    (out / "answers.md").write_text(answers_md(doc) + "\n")
    print(f"wrote {rep.md_path}, headline.md, answers.md and {len(list((out / 'figures').glob('*.png')))} figures")


if __name__ == "__main__":
    main()
