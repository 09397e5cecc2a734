"""The industry figure draws labels it has glyphs for: Chinese industry names (the real data's) either in an installed
font that has them or as stand-ins with a note — never as empty boxes with one warning per glyph."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pandas as pd
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from quantsam.backtest.figures import active_industry_figure, tick_labels

NAMES = ["银行", "非银金融", "电子", "医药生物"]


def _has_glyphs(path: str, text: str) -> bool:
    """Independently of the module: does this font file map every character?"""
    cm = FT2Font(path).get_charmap()
    return all(ord(c) in cm for c in text)


def test_ascii_names_are_kept_as_they_are():
    assert tick_labels(["bank", "electronics"]) == (["bank", "electronics"], None, "")


def test_chinese_names_are_drawn_in_a_font_that_has_them_or_replaced_by_stand_ins():
    labels, family, note = tick_labels(NAMES)
    cjk = [f for f in font_manager.fontManager.ttflist if _has_glyphs(f.fname, "".join(NAMES))]
    if cjk:
        assert labels == NAMES and family is not None and note == ""
    else:  # this machine: no CJK font installed
        assert labels == ["I1", "I2", "I3", "I4"] and family is None and "active_industry.parquet" in note
    rep = SimpleNamespace(active_industry=pd.DataFrame([[0.01, -0.02, 0.0, 0.005]], columns=NAMES))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a UserWarning: none may be raised
        fig = active_industry_figure(rep)
        fig.canvas.draw()
    drawn = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert drawn == ([n for n in NAMES if n != "电子"] if cjk else ["I1", "I2", "I4"])  # the zero column is left out
