"""Backtest figures; each returns a matplotlib Figure."""

from __future__ import annotations

from functools import cache

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


@cache
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(path).get_charmap())


def _covers(path: str, text: str) -> bool:
    cm = _charmap(path)
    return all(ord(c) in cm for c in text if not c.isspace())


def tick_labels(names: list[str]) -> tuple[list[str], str | None, str]:
    """Labels a figure can draw: the names themselves when matplotlib's default font has their glyphs; else the first
    installed font that has them all (e.g. Noto Sans CJK for the real data's Chinese industry names), returned as the
    family to draw them with; else stand-ins ``I1, I2, ...`` in the names' order and a note saying where the names
    are. Drawing missing glyphs gives empty boxes and one warning per glyph and figure (thousands per backtest)."""
    from matplotlib import font_manager

    text = "".join(names)
    if _covers(font_manager.findfont(font_manager.FontProperties()), text):
        return names, None, ""
    for f in font_manager.fontManager.ttflist:
        try:
            if _covers(f.fname, text):
                return names, f.name, ""
        except (OSError, RuntimeError):  # a font file matplotlib lists but cannot open
            continue
    return [f"I{i + 1}" for i in range(len(names))], None, " (I1.. in the columns' order of active_industry.parquet: " \
        "no installed font has the names' glyphs)"


def nav_figure(rep):
    fig, ax = plt.subplots(figsize=(10, 4))
    d = rep.daily
    ax.plot(d.index, d["nav"], label="portfolio", color="tab:red")
    ax.plot(d.index, d["bench_nav"], label=f"benchmark {rep.notes.get('index_code', '')}", color="tab:gray")
    ax.set_ylabel("NAV")
    s = rep.summary
    ax.set_title(f"{rep.universe}: {100 * s['ann_return']:.1f}% p.a. vs {100 * s['bench_ann_return']:.1f}%")
    ax.legend()
    fig.tight_layout()
    return fig


def excess_figure(rep):
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    nav = rep.daily["excess_nav"]
    a1.plot(nav.index, nav, color="tab:red")
    a1.set_ylabel("excess NAV")
    s = rep.summary
    a1.set_title(f"excess {100 * s['excess_ann']:.1f}% p.a., IR {s['info_ratio']:.2f}, "
                 f"max DD {100 * s['excess_max_drawdown']:.1f}%")
    dd = nav / np.maximum.accumulate(nav) - 1
    a2.fill_between(dd.index, 100 * dd, 0, color="tab:blue", alpha=0.5)
    a2.set_ylabel("drawdown (%)")
    fig.tight_layout()
    return fig


def turnover_figure(rep):
    fig, ax = plt.subplots(figsize=(10, 3))
    r = rep.rebalances
    ax.bar(r["fill_date"], r["turnover"], width=4, color="tab:purple")
    ax.set_ylabel("two-sided turnover")
    ax.set_title(f"turnover per rebalance (mean {rep.summary['turnover']:.2f})")
    fig.tight_layout()
    return fig


def active_industry_figure(rep):
    fig, ax = plt.subplots(figsize=(10, 4))
    m = rep.active_industry.mean()
    labels, family, note = tick_labels([str(x) for x in m.index])  # stand-ins numbered over every column
    keep = (m.abs() > 0).to_numpy()
    m, labels = m[keep], [lab for lab, k in zip(labels, keep, strict=True) if k]
    x = np.arange(len(m))
    ax.bar(x, 100 * m.to_numpy(), color=np.where(m.to_numpy() > 0, "tab:red", "tab:green"))
    ax.set_xticks(x, labels, rotation=75, fontsize=7, **({"fontfamily": family} if family else {}))
    ax.set_ylabel("mean active weight (%)")
    ax.set_title("active weights by industry (mean over rebalances)" + note, fontsize=10 if note else None)
    fig.tight_layout()
    return fig


def backtest_figures(rep) -> dict:
    return {"nav": nav_figure(rep), "excess": excess_figure(rep), "turnover": turnover_figure(rep),
            "active_industry": active_industry_figure(rep)}
