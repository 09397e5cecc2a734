"""Artifact housekeeping shared by the stages: writing a report's tables/figures/summary, closing figures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def save_outputs(directory: str | Path, tables: dict[str, pd.DataFrame], summary: dict, figures: dict) -> list[Path]:
    """Tables as parquet, ``summary.json``, figures as PNG (dpi 110) in ``directory``; returns the paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for name, df in tables.items():
        p = d / f"{name}.parquet"
        df.to_parquet(p)
        out.append(p)
    p = d / "summary.json"
    p.write_text(json.dumps(summary, indent=1, default=float))
    out.append(p)
    for name, fig in figures.items():
        p = d / f"{name}.png"
        fig.savefig(p, dpi=110, bbox_inches="tight")
        out.append(p)
    return out


def close_figures(figs: dict) -> None:
    """Release figures a stage has saved (matplotlib keeps pyplot figures alive until closed)."""
    import matplotlib.pyplot as plt

    for fig in figs.values():
        plt.close(fig)
