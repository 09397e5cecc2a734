"""Figure housekeeping shared by the stages."""

from __future__ import annotations


def close_figures(figs: dict) -> None:
    """Release figures a stage has saved (matplotlib keeps pyplot figures alive until closed)."""
    import matplotlib.pyplot as plt

    for fig in figs.values():
        plt.close(fig)
