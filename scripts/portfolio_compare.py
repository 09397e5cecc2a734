"""Portfolios side by side on one signal (issue 32): the source's LP, risk_controlled, the cost-aware optimiser and the
rule baselines (top-N, qlib's TopkDropout), for CSI300/500/1000, each through the cached backtest stage.

    python scripts/portfolio_compare.py multirun/real_arms/adamw --out docs/results/portfolios/adamw
    python scripts/portfolio_compare.py <signal.parquet | sweep dir> --portfolios cost_aware,top_n --universes csi500
    python scripts/portfolio_compare.py <sweep dir> --grid cost_aversion=0.5,1,2,4 --select 2020-01-01:2020-12-31
    python scripts/portfolio_compare.py multirun/real_arms/gsam --start 2021-01-01 --against multirun/real_arms/adamw
    python scripts/portfolio_compare.py multirun/real_arms/gsam --start 2021-01-01 --pairs cost_aware:risk_controlled

The signal is a ``signal.parquet`` or a sweep folder of ``scripts/real_study.py`` (its job's signal). ``--grid``
runs the cost-aware optimiser for each value on the selection period only (data the reported period never sees),
picks the value with the best mean net IR over the indices, and then runs that one value — not tuned on it — on the
period after the selection period; both tables are written. Tables: net excess (against the total-return benchmark)
and IR, TE, turnover, yearly costs, the excess and IR before costs, the transfer coefficient, the excess over the
published price index, the TE forecast's bias statistic and the share of relaxed rebalances. ``--against`` runs the
same portfolios on a second signal (e.g. another optimizer's) and tests, per portfolio and index, the paired weekly
excess difference (this signal minus that one): mean in %/yr, t-test and Wilcoxon p-values and the difference
detectable at 80% power (MDE) — how well each portfolio can tell two signals apart; ``--pairs A:B`` tests two
portfolios of the same signal against each other the same way.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = {"excess_ann": "net excess", "info_ratio": "IR", "tracking_error": "TE", "turnover": "turnover",
           "cost_ann": "costs/yr", "excess_ann_gross": "excess before costs", "info_ratio_gross": "IR before costs",
           "transfer_coefficient": "TC", "excess_ann_vs_price_index": "excess vs price index", "te_bias": "TE bias",
           "te_bias_factor": "TE bias factor part", "te_bias_rest": "TE bias rest",
           "te_bias_vs_benchmark": "TE bias vs benchmark", "relaxed_share": "relaxed",
           "failed_share": "solver failed"}
PCT = {"excess_ann", "tracking_error", "cost_ann", "excess_ann_gross", "excess_ann_vs_price_index"}


def signal_of(path: Path, arm: str | None = None) -> Path:
    """The signal parquet itself, or the signal of a sweep folder's job (its arm ``arm``, else the first job)."""
    if path.suffix == ".parquet":
        return path
    docs = [json.loads(r.read_text()) for r in sorted(path.glob("*/result.json"))]
    docs = [d for d in docs if arm is None or d.get("optimizer") == arm]
    if not docs or not docs[0].get("signal"):
        raise SystemExit(f"{path}: neither a signal parquet nor a sweep folder with a finished */result.json"
                         + (f" of arm {arm}" if arm else ""))
    return Path(docs[0]["signal"])


def run(experiment: str, signal: Path, portfolio: str, universes: list[str], start: str, end: str,
        extra: list[str], dirs: dict | None = None) -> dict[str, dict]:
    """The backtest summaries per index (the cached stage: a rerun is a cache hit); ``dirs`` collects each index's
    result folder."""
    from quantsam.backtest.stage import run_backtest
    from quantsam.config import compose
    from quantsam.data.stage import run_data
    from quantsam.features.market import open_market

    cfg = compose([f"experiment={experiment}", f"portfolio={portfolio}", f"backtest.start={start}",
                   f"backtest.end={end}", f"backtest.universes=[{','.join(universes)}]", "backtest.workers=1", *extra])
    market = open_market(run_data(cfg))
    t0 = time.perf_counter()
    out = run_backtest(cfg, signal, market)
    print(f"  {portfolio} {' '.join(extra)}: {time.perf_counter() - t0:.0f} s "
          f"({'reused: ' + ','.join(out.skipped) if out.skipped else 'computed'})", flush=True)
    if dirs is not None:
        dirs.update(out.out_dirs)
    return out.summaries


def paired(a: dict[str, dict[str, Path]], b: dict[str, dict[str, Path]]) -> pd.DataFrame:
    """Per portfolio and index: the paired weekly excess difference a - b over their common weeks (mean and MDE in
    %/yr, x 52), its t-test and Wilcoxon p-values — the study report's unit (``report.tables.weekly_sum``)."""
    from quantsam.report.tables import paired_test, weekly_sum

    def weekly(folder: Path) -> pd.Series:
        return weekly_sum(pd.read_parquet(folder / "daily.parquet", columns=["excess"])["excess"])

    recs = []
    for name in a:
        for u in a[name]:
            if u not in b.get(name, {}):
                continue
            x, y = weekly(a[name][u]), weekly(b[name][u])
            idx = x.index.intersection(y.index)
            t = paired_test(x[idx] - y[idx])
            recs.append({"portfolio": name, "index": u, "weeks": int(t["pairs"]), "difference %/yr": 52 * t["mean"],
                         "t p": t["t p"], "Wilcoxon p": t["Wilcoxon p"], "MDE %/yr (80% power)": 52 * t["MDE (80% power)"]})
    return pd.DataFrame(recs)


def table(rows: dict[str, dict[str, dict]], universes: list[str]) -> pd.DataFrame:
    recs = []
    for name, by_u in rows.items():
        for u in universes:
            s = by_u.get(u, {})
            recs.append({"portfolio": name, "index": u, **{COLUMNS[k]: s.get(k, np.nan) for k in COLUMNS}})
    return pd.DataFrame(recs)


def md(df: pd.DataFrame) -> str:
    """A table as Markdown (``report.render.md_table``): returns as percentages (the portfolio columns of
    :data:`PCT` to 0.1%, a paired test's ``... %/yr`` columns to 0.01%), p-values to 3 decimals, the rest to 2."""
    from quantsam.report.render import md_table

    pct = {COLUMNS[k] for k in PCT}

    def fmt(c, v):
        if not isinstance(v, float):
            return str(v)
        if not np.isfinite(v):
            return "—"
        return (f"{100 * v:+.1f}%" if c in pct else f"{100 * v:+.2f}%" if "%/yr" in c else
                f"{v:.3f}" if c.endswith(" p") else f"{v:.2f}")

    return md_table(pd.DataFrame({c: [fmt(c, v) for v in df[c]] for c in df.columns}).set_index("portfolio"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("signal", help="signal.parquet or a scripts/real_study.py sweep folder")
    ap.add_argument("--arm", default=None, help="the arm whose signal to use in a sweep of several (default: first)")
    ap.add_argument("--experiment", default="real_arms")
    ap.add_argument("--portfolios", default="ai84_lp,risk_controlled,cost_aware,top_n,topk_dropout")
    ap.add_argument("--universes", default="csi300,csi500,csi1000")
    ap.add_argument("--start", default="2019-12-31")
    ap.add_argument("--end", default="2024-06-28")
    ap.add_argument("--grid", default=None, help="KEY=v1,v2,... of portfolio=cost_aware to choose on --select")
    ap.add_argument("--select", default="2019-12-31:2020-12-31", help="START:END of the selection period")
    ap.add_argument("--out", default=None, help="write table.md / summary.json here")
    ap.add_argument("--override", action="append", default=[], help="a Hydra override for every backtest (repeatable)")
    ap.add_argument("--against", default=None, help="a second signal (or sweep folder): the same portfolios on it and "
                                                    "the paired weekly-excess tests, this signal minus that one")
    ap.add_argument("--against-arm", default=None, help="the arm of --against's sweep (default: first)")
    ap.add_argument("--pairs", default=None, help="A:B,... portfolios of this signal to test against each other "
                                                  "(paired weekly excess A minus B per index)")
    a = ap.parse_args()
    signal = signal_of(Path(a.signal), a.arm)
    universes = a.universes.split(",")
    doc: dict = {"signal": str(signal), "experiment": a.experiment, "universes": universes}
    parts = []
    if a.grid:
        key, vals = a.grid.split("=", 1)
        s0, s1 = a.select.split(":")
        print(f"selection {s0} .. {s1}: portfolio=cost_aware, {key} in {vals}", flush=True)
        sel = {f"{key}={v}": run(a.experiment, signal, "cost_aware", universes, s0, s1,
                                 [f"portfolio.{key}={v}", *a.override])
               for v in vals.split(",")}
        sel_df = table(sel, universes)
        score = sel_df.groupby("portfolio")["IR"].mean()
        best = str(score.idxmax())
        print(f"chosen on {s0} .. {s1}: {best} (mean net IR {score.max():.2f})", flush=True)
        rest = (pd.Timestamp(s1) + pd.Timedelta(days=1)).date()
        rep = {f"cost_aware {best}": run(a.experiment, signal, "cost_aware", universes, str(rest), a.end,
                                         [f"portfolio.{best}", *a.override])}
        for p in a.portfolios.split(","):  # the others on the same reported period
            rep[p] = run(a.experiment, signal, p, universes, str(rest), a.end, a.override)
        rep_df = table(rep, universes)
        doc.update({"grid": a.grid, "selection_period": [s0, s1], "chosen": best,
                    "selection_mean_ir": score.to_dict(), "report_period": [str(rest), a.end]})
        parts += [f"## Selection on {s0} .. {s1} (portfolio=cost_aware)", "", md(sel_df), "",
                  f"Chosen: `{best}` (best mean net IR over the indices).", "",
                  f"## Reported period {rest} .. {a.end} (the chosen value, not tuned on it, beside the others)", "",
                  md(rep_df)]
        doc["selection"], doc["report"] = sel_df.to_dict("records"), rep_df.to_dict("records")
    else:
        dirs: dict[str, dict] = {p: {} for p in a.portfolios.split(",")}
        rows = {p: run(a.experiment, signal, p, universes, a.start, a.end, a.override, dirs[p]) for p in dirs}
        df = table(rows, universes)
        parts += [f"## {a.start} .. {a.end}", "", md(df)]
        doc["period"], doc["table"] = [a.start, a.end], df.to_dict("records")
        if a.pairs:
            pairs = [x.split(":") for x in a.pairs.split(",")]
            bad = [x for pair in pairs for x in pair if x not in dirs]
            if bad or any(len(pair) != 2 for pair in pairs):
                raise SystemExit(f"--pairs {a.pairs}: each pair is A:B of the --portfolios {a.portfolios} ({bad})")
            pp = pd.concat([paired({f"{x} - {y}": dirs[x]}, {f"{x} - {y}": dirs[y]}) for x, y in pairs])
            parts += ["", "## Paired weekly excess between portfolios of this signal (mean and MDE x 52 in %/yr)", "",
                      md(pp)]
            doc["paired_portfolios"] = pp.to_dict("records")
        if a.against:
            other = signal_of(Path(a.against), a.against_arm)
            odirs: dict[str, dict] = {p: {} for p in dirs}
            orows = {p: run(a.experiment, other, p, universes, a.start, a.end, a.override, odirs[p]) for p in dirs}
            pt = paired(dirs, odirs)
            parts += ["", f"## The other signal ({a.against}), same portfolios and period", "", md(table(orows, universes)),
                      "", f"## Paired weekly excess: this signal minus {a.against} (per week; mean and MDE x 52 in %/yr)",
                      "", md(pt)]
            doc["against"], doc["against_table"] = str(other), table(orows, universes).to_dict("records")
            doc["paired"] = pt.to_dict("records")
    text = "\n".join(parts)
    print(text)
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        cmd = "python scripts/portfolio_compare.py " + " ".join(
            x for x in [a.signal, f"--portfolios {a.portfolios}", f"--universes {a.universes}",
                        f"--grid {a.grid} --select {a.select}" if a.grid else f"--start {a.start} --end {a.end}",
                        f"--pairs {a.pairs}" if a.pairs else "", f"--against {a.against}" if a.against else ""] if x)
        (out / "table.md").write_text(f"# Portfolios on one signal\n\nMade by `{cmd}`; signal `{signal}`.\n\n"
                                      + text + "\n")
        (out / "summary.json").write_text(json.dumps(doc, indent=1, default=float) + "\n")
        print(f"wrote {out}/table.md and summary.json")


if __name__ == "__main__":
    main()
