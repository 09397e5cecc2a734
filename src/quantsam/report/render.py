"""The study report: tables + figures -> a self-contained HTML file (figures embedded) and a Markdown twin."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from quantsam.report import tables as T
from quantsam.report.collect import JobResult
from quantsam.report.figures import study_figures
from quantsam.stageio import close_figures

log = logging.getLogger(__name__)

SECTIONS = ("Setup", "Summary", "Factor test", "Index enhancement", "Last year", "Significance", "Cost", "Figures",
            "Diagnostics")


@dataclass
class StudyReport:
    jobs: list[JobResult]
    tables: dict[str, pd.DataFrame]
    figures: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)  # landscape / sharpness tables and figures (optional)
    html_path: Path | None = None
    md_path: Path | None = None


def md_table(df: pd.DataFrame) -> str:
    """A Markdown table (written here to avoid a dependency on tabulate for DataFrame.to_markdown)."""
    def cell(v):
        if isinstance(v, float):
            return "—" if v != v else f"{v:.4g}"
        return str(v)

    cols = [str(c) for c in df.columns]
    head = "| " + " | ".join([df.index.name or ""] + cols) + " |"
    sep = "|" + "---|" * (len(cols) + 1)
    rows = ["| " + " | ".join([str(i)] + [cell(v) for v in r]) + " |" for i, r in zip(df.index, df.to_numpy(), strict=True)]
    return "\n".join([head, sep, *rows])


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def build_tables(jobs: list[JobResult]) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    num, txt = T.factor_table(jobs)
    out["factor"], out["factor_numeric"] = txt, num
    for u in T.universes(jobs):
        num, txt = T.backtest_table(jobs, u)
        out[f"backtest_{u}"], out[f"backtest_{u}_numeric"] = txt, num
    out["last_year"] = T.last_year_table(jobs)
    out["summary"] = T.summary_table(jobs)
    out["significance"] = T.significance(jobs)
    out["power"] = T.power_table(jobs)
    out["claims"] = T.source_claims(jobs)
    out["cost"] = T.cost_table(jobs)
    out["arms"] = T.arms_table(jobs)
    return out


def render(report: StudyReport, out_dir: str | Path, title: str = "quantsam study") -> StudyReport:
    """Write ``report.html`` (self-contained), ``report.md``, ``figures/*.png`` and ``tables/*.parquet``."""
    d = Path(out_dir)
    (d / "figures").mkdir(parents=True, exist_ok=True)
    (d / "tables").mkdir(parents=True, exist_ok=True)
    for name, df in report.tables.items():
        # formatted tables ("0.05 ± 0.01") mix types per column: store them as text
        (df.astype(str) if df.dtypes.eq(object).any() else df).to_parquet(d / "tables" / f"{name}.parquet")
    pngs = {}
    for name, fig in {**report.figures, **report.diagnostics.get("figures", {})}.items():
        data = _png(fig)
        close_figures({name: fig})
        (d / "figures" / f"{name}.png").write_bytes(data)
        pngs[name] = data
    jobs = report.jobs
    opts = T.optimizers(jobs)
    seeds = sorted({j.seed for j in jobs})
    per_model = sorted({int(j.windows["seed"].nunique()) for j in jobs if j.windows is not None and len(j.windows)})
    seed_text = (f"{len(seeds)} sweep seed(s) ({', '.join(map(str, seeds))})"
                 + (f" x {'/'.join(map(str, per_model))} trained seed(s) per model, averaged" if per_model else ""))
    setup = pd.DataFrame({"value": [", ".join(opts), seed_text, len(jobs),
                                    str(jobs[0].splits[0]["test"][0]) + " .. " + str(jobs[0].splits[-1]["test"][1])
                                    if jobs and jobs[0].splits else "—",
                                    len(jobs[0].splits) if jobs else 0,
                                    "; ".join(f"{u}: {n.get('benchmark_weights', '?')}"
                                              for u, n in (jobs[0].notes.items() if jobs else []))]},
                         index=["optimizers", "seeds", "runs", "test period", "rolling windows", "benchmark weights"])
    blocks: list[tuple[str, str, pd.DataFrame | None, list[str]]] = [
        ("Setup", "", setup, []),
        ("Setup", "Arms, grouped: the baseline (AdamW, and AdamW at a SAM arm's gradient budget), the generalisation "
                  "variants of the AI-84 report and WSAM, the efficiency variants, the composite.",
         report.tables["arms"], []),
        ("Summary", "Mean over seeds: test RankIC / ICIR of the signal, TOP-layer annualised excess, each index's "
                    "annualised excess and IR, gradient evaluations, training wall time (s).", report.tables["summary"],
         []),
        ("Factor test", "Weekly factor test of the combined signal (mean ± std across seeds).", report.tables["factor"],
         ["ic", "layers"]),
    ]
    for u in T.universes(jobs):
        blocks.append(("Index enhancement", f"{u}: index-enhanced portfolio, weekly, T+1 VWAP, 0.2% per side.",
                       report.tables[f"backtest_{u}"], [f"nav_{u}"]))
    blocks += [
        ("Last year", "Excess return in the last calendar year of the backtest (partial years: year to date).",
         report.tables["last_year"], []),
        ("Significance", "Each variant vs AdamW on per-window test RankIC, paired over seeds x rolling windows "
                         "(Wilcoxon signed-rank, two-sided).", report.tables["significance"], []),
        ("Power", "Each arm vs AdamW, paired: test RankIC per (rolling window, seed index) against the training label "
                  "(all names; within each index's members), and each portfolio's weekly excess per week — mean "
                  "difference, t-test and Wilcoxon p-values, and the smallest difference each test detects with 80% "
                  "power at the 5% level (MDE).",
         report.tables["power"].set_index("arm") if len(report.tables["power"]) else None, []),
        ("The source's claims", (" ".join(T.claims_text(report.tables["claims"])) + " Each metric: the best arm, "
                                 "the claimed arm's rank and its paired test against its strongest rival (test RankIC "
                                 "per window x seed; weekly excess per week, annualised x 52 as a fraction: 0.01 = 1%/yr).")
         if len(report.tables["claims"]) else "Not checked: the study has one arm or neither GSAM nor ASAM.",
         report.tables["claims"].drop(columns="claim").set_index("arm") if len(report.tables["claims"]) else None,
         []),
        ("Cost", "Gradient evaluations and training wall time (seconds) per arm; the wall of each stage in the arm's "
                 "latest pipeline run (a stage served from its cache takes seconds — training's own time is 'train "
                 "wall'); test RankIC per 1,000 gradient evaluations.",
         report.tables["cost"], ["cost"]),
        ("Figures", "Convergence: validation RankIC and RankICIR per epoch for the same seed, window and data.",
         None, [k for k in ("convergence", "convergence_weekly") if k in pngs]),
    ]
    diag = report.diagnostics
    blocks.append(("Diagnostics", diag.get("text", "Loss landscapes and sharpness were not computed for this "
                                                     "study (report.landscape=false)."),
                   diag.get("table"), [k for k in diag.get("figures", {})]))
    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
         "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}table{border-collapse:collapse;"
         "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
         "img{max-width:100%}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
         f"<p>generated {time.strftime('%Y-%m-%d %H:%M:%S')}</p>"]
    md = [f"# {title}", "", f"generated {time.strftime('%Y-%m-%d %H:%M:%S')}", ""]
    current = None
    for section, text, df, figs in blocks:
        if section != current:
            h.append(f"<h2 id='{section.lower().replace(' ', '-')}'>{section}</h2>")
            md += [f"## {section}", ""]
            current = section
        if text:
            h.append(f"<p>{html.escape(text)}</p>")
            md += [text, ""]
        if df is not None and len(df):
            h.append(df.to_html(na_rep="—", float_format=lambda v: f"{v:.4g}", escape=True))
            md += [md_table(df), ""]
        for f in figs:
            if f in pngs:
                b64 = base64.b64encode(pngs[f]).decode()
                h.append(f"<p><img alt='{f}' src='data:image/png;base64,{b64}'></p>")
                md += [f"![{f}](figures/{f}.png)", ""]
    h.append("</body></html>")
    report.html_path = d / "report.html"
    report.md_path = d / "report.md"
    report.html_path.write_text("\n".join(h))
    report.md_path.write_text("\n".join(md))
    return report


def parent_metrics(summary: pd.DataFrame) -> dict[str, float]:
    """The side-by-side table as the sweep parent run's own metrics, ``compare/<arm>/<row>`` (e.g.
    ``compare/gsam/test_rank_ic``), so the parent shows the comparison without opening its children."""
    out = {}
    for arm in summary.columns:
        for row, v in summary[arm].items():
            if np.isfinite(v):
                out[f"compare/{arm}/{re.sub(r'[^0-9a-zA-Z]+', '_', row.lower()).strip('_')}"] = float(v)
    return out


def write_report(jobs: list[JobResult], sweep_dir: str | Path, out_dir: str | Path | None = None,
                 diagnostics: dict | None = None, parent_run: tuple | None = None) -> StudyReport:
    """Build tables and figures of the collected ``jobs``, render; log to the parent MLflow run when given
    (``(client, run_id)``)."""
    tabs = build_tables(jobs)
    rep = StudyReport(jobs, tabs, study_figures(jobs, tabs["cost"]), diagnostics or {})
    out = Path(out_dir) if out_dir else Path(sweep_dir) / "report"
    render(rep, out)
    if parent_run is not None:
        client, run_id = parent_run
        client.log_artifacts(run_id, str(out), "report")
        client.set_tag(run_id, "report", str(rep.html_path))
        for k, v in parent_metrics(T.summary_table(jobs)).items():
            client.log_metric(run_id, k, v)
    log.info("study report: %s", rep.html_path)
    (out / "jobs.json").write_text(json.dumps([{"optimizer": j.optimizer, "seed": j.seed, "work_dir": str(j.work_dir),
                                                "run_id": j.run_id} for j in jobs], indent=1))
    return rep
