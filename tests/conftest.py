"""Shared fixtures: a small synthetic market (generated once per test session)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def small_market():
    """400 stocks, 2018-2021: spans the STAR opening (2019-07-22) and ChiNext's switch to 20% limits (2020-08-24)."""
    from quantsam.data.synthetic import generate_market

    return generate_market(seed=7, n_stocks=400, start="2018-01-01", end="2021-12-31")


@pytest.fixture(scope="session")
def small_panel(small_market):
    from quantsam.features.panel import build_panel

    return build_panel(small_market.daily)


@pytest.fixture
def smoke_cfg(tmp_path):
    """The composed ``experiment=smoke`` config with its data, results and MLflow store under ``tmp_path``
    (lightning-hydra-template's ``cfg_train``): what a test changes, it changes on this copy."""
    from quantsam.config import compose
    from tests.cli import isolated

    return compose(["experiment=smoke", *isolated(tmp_path)])
