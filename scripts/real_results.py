"""Write the real replication's results into the repository: ``docs/results/<name>/`` gets the study report as
Markdown with its figures (the same report ``make report`` renders), a table of each arm's return attribution and
active style exposures, and a header with the command, the caveats and the run's provenance.

    python scripts/real_results.py multirun/<date>/<time> [--name real_csi500_cpu]

The sweep directory is what ``make study experiment=real_csi500_cpu`` wrote. Only results are written (tables of
metrics, figures of NAVs and ICs) — no market data.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pandas as pd

from quantsam.report.collect import collect
from quantsam.report.render import md_table, write_report

ROOT = Path(__file__).resolve().parents[1]

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
            keys = ["excess_ann", "excess_ann_vs_price_index", "tracking_error", "info_ratio", "ex_ante_te_mean",
                    "turnover", "relaxed_share",
                    "attr_industry", *[k for k in s if k.startswith("attr_") and k not in (
                        "attr_industry", "attr_costs", "attr_specific", "attr_excess")],
                    "attr_costs", "attr_specific", "attr_excess",
                    *[k for k in s if k.startswith("active_")]]
            rows[f"{j.optimizer} s{j.seed} {u}"] = {k: s.get(k) for k in keys}
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("sweep")
    ap.add_argument("--name", default="real_csi500_cpu")
    a = ap.parse_args()
    sweep = Path(a.sweep)
    out = ROOT / "docs" / "results" / a.name
    jobs = collect(sweep)
    rep = write_report(jobs, sweep, out_dir=out)
    (out / "report.html").unlink(missing_ok=True)  # the Markdown + PNGs are what the repository keeps
    (out / "jobs.json").unlink(missing_ok=True)  # local paths
    attr = _attribution(jobs)
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    n_windows = max(len(j.splits) for j in jobs) or "the"
    head = [f"# Real replication: `{a.name}`", "",
            "Made by `make study experiment=real_csi500_cpu` and then "
            f"`python scripts/real_results.py <its multirun dir> --name {a.name}` (code at {sha.strip() or '?'}).",
            "", CAVEATS.format(n_windows=n_windows, relaxed=" / ".join(
                f"{100 * float(v):.0f}% ({k.split()[0]})" for k, v in attr.loc["relaxed_share"].items())), "",
            "## Return attribution and active styles (annualised; arithmetic, so the parts add up to attr_excess)",
            "", md_table(attr), ""]
    body = rep.md_path.read_text().splitlines()
    rep.md_path.write_text("\n".join(head + body[1:]) + "\n")
    print(f"wrote {rep.md_path} and {len(list((out / 'figures').glob('*.png')))} figures")


if __name__ == "__main__":
    main()
