"""Daily portfolio simulation with weekly rebalancing filled at the next day's VWAP.

Timing: the signal is known at the close of decision day t; orders fill at t+1 (the fill day f) at VWAP. On f the
portfolio first moves from the previous close to the VWAP with the old weights, is rebalanced there (paying costs),
then moves from the VWAP to the close with the new weights; between fills weights drift with close-to-close returns.
All prices are back-adjusted so ex-rights days are not returns.

Trading rules on the fill day, known before the fill (the open auction shows them): a suspended name (no row) is not
traded; a one-price limit-up name cannot be bought; a one-price limit-down name cannot be sold. A target that breaks a
rule is clipped to what can be traded and the remaining tradable names are re-weighted to keep the budget.
Costs: ``cost_per_side`` x traded value on both sides, plus ``stamp_duty`` x sold value. Optional board lots: with
``lot_size`` and ``capital`` set, holdings are whole lots at the raw VWAP and the rest is cash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class MarketArrays:
    """Dense ``[T, N]`` arrays the simulation needs (NaN where there is no row)."""

    close: np.ndarray  # adjusted close
    vwap: np.ndarray  # adjusted fill price (VWAP by default; backtest.fill_price=open|close)
    traded: np.ndarray  # bool: a row exists (not suspended)
    limit_up: np.ndarray  # bool: one-price limit-up
    limit_down: np.ndarray  # bool: one-price limit-down
    raw_vwap: np.ndarray | None = None  # unadjusted fill price (for board lots)


@dataclass
class SimResult:
    nav: np.ndarray  # [T] portfolio value at each close (starts at 1 before day 0)
    returns: np.ndarray  # [T] daily returns
    weights: np.ndarray  # [T, N] weights at each close
    cash: np.ndarray  # [T]
    turnover: dict[int, float] = field(default_factory=dict)  # fill day -> two-sided turnover
    costs: dict[int, float] = field(default_factory=dict)  # fill day -> cost as a fraction of value


def enforce_rules(target: np.ndarray, current: np.ndarray, traded: np.ndarray, limit_up: np.ndarray,
                  limit_down: np.ndarray, budget: float = 1.0) -> np.ndarray:
    """Clip ``target`` to what the fill day allows and re-weight the free names so the weights sum to ``budget``:
    suspended -> keep current; limit-up -> no increase; limit-down -> no decrease."""
    t = np.where(np.isfinite(target), target, 0.0).clip(min=0.0)
    fixed = ~traded
    t[fixed] = current[fixed]
    up = traded & limit_up & (t > current)
    t[up] = current[up]
    dn = traded & limit_down & (t < current)
    t[dn] = current[dn]
    frozen = fixed | up | dn
    free = ~frozen & traded
    room = budget - t[frozen].sum()
    s = t[free].sum()
    if s > 0 and room > 0:
        t[free] *= room / s
    return t


def simulate(m: MarketArrays, fill_days: list[int] | np.ndarray,
             decide: Callable[[int, np.ndarray], np.ndarray], cost_per_side: float = 0.002,
             stamp_duty: float = 0.0, lot_size: int | None = None, capital: float | None = None) -> SimResult:
    """Run the daily simulation. ``decide(f, w_pre)`` returns target weights ``[N]`` for fill day ``f`` given the
    weights ``w_pre`` at that day's VWAP (before trading); it may only use information up to f's open."""
    T, N = m.close.shape
    close_ff = ffill(m.close)
    fills = set(int(f) for f in fill_days)
    w = np.zeros(N)
    cash = 1.0
    value = 1.0
    nav, rets, cash_hist = np.empty(T), np.empty(T), np.empty(T)
    weights = np.zeros((T, N))
    turnover, costs = {}, {}
    for d in range(T):
        v0 = value
        prev_close = close_ff[d - 1] if d > 0 else close_ff[d]
        tr = m.traded[d]
        with np.errstate(invalid="ignore", divide="ignore"):
            day = np.where(tr, m.close[d] / prev_close, 1.0)
        day = np.where(np.isfinite(day), day, 1.0)
        if d in fills:
            with np.errstate(invalid="ignore", divide="ignore"):
                g1 = np.where(tr, m.vwap[d] / prev_close, 1.0)
                g2 = np.where(tr, m.close[d] / m.vwap[d], 1.0)
            g1 = np.where(np.isfinite(g1), g1, 1.0)
            g2 = np.where(np.isfinite(g2), g2, 1.0)
            gross1 = (w * g1).sum() + cash
            value *= gross1
            w_pre = w * g1 / gross1
            cash /= gross1
            target = np.asarray(decide(d, w_pre.copy()), dtype=np.float64)
            target = enforce_rules(target, w_pre, tr, m.limit_up[d], m.limit_down[d])
            if lot_size and capital and m.raw_vwap is not None:
                px = np.where(tr, m.raw_vwap[d], np.nan)
                lots = np.floor(target * value * capital / (px * lot_size) + 1e-9)
                lots = np.where(np.isfinite(lots), lots, 0.0)
                w_lot = lots * lot_size * px / (value * capital)
                target = np.where(tr & np.isfinite(px), w_lot, target)
            new_cash = max(0.0, 1.0 - target.sum())
            delta = target - w_pre
            turnover[d] = float(np.abs(delta).sum())
            cost = cost_per_side * float(np.abs(delta).sum()) + stamp_duty * float((-delta).clip(min=0).sum())
            costs[d] = cost
            value *= 1.0 - cost
            w, cash = target, new_cash
            gross2 = (w * g2).sum() + cash
            value *= gross2
            w = w * g2 / gross2
            cash /= gross2
        else:
            gross = (w * day).sum() + cash
            value *= gross
            w = w * day / gross
            cash /= gross
        nav[d] = value
        rets[d] = value / v0 - 1.0
        weights[d] = w
        cash_hist[d] = cash
    return SimResult(nav=nav, returns=rets, weights=weights, cash=cash_hist, turnover=turnover, costs=costs)


def benchmark_returns(weights: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Daily benchmark return ``sum_i b_{d-1,i} r_{d,i}`` from constituent weights at the previous close and
    adjusted close-to-close returns (suspended names: 0). Day 0 has return 0."""
    close_ff = ffill(close)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = close_ff[1:] / close_ff[:-1] - 1.0
    r = np.where(np.isfinite(r), r, 0.0)
    b = np.where(np.isfinite(weights[:-1]), weights[:-1], 0.0)
    tot = b.sum(axis=1)
    out = np.zeros(len(close))
    out[1:] = np.where(tot > 0, (b * r).sum(axis=1) / np.where(tot > 0, tot, 1.0), 0.0)
    return out


def ffill(x: np.ndarray) -> np.ndarray:
    """Forward-fill NaN along axis 0."""
    x = np.asarray(x, dtype=np.float64)
    idx = np.where(np.isfinite(x), np.arange(len(x))[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = np.take_along_axis(x, idx, axis=0)
    return out
