"""Quantile layers on dense ``[T, N]`` arrays, layer returns, and turnover.

Layers follow ``pandas.qcut(values, n, labels=False) + 1`` exactly, ties and values on an edge included: edges are the
row's linear-interpolated quantiles ``q_i`` (i = 1..n-1) computed with numpy's own arithmetic (:func:`_edges_sorted`)
and a value falls in layer ``1 + #{i : x > q_i}`` (right-closed bins, lowest included), so tied values always share a
layer. Where edges coincide (heavy ties) ``qcut`` raises; here the layer between them is empty and the numbering
keeps its meaning (layer k is always the k-th quantile bin). Vectorised over dates (sort once per row), never
``groupby(date).apply``.
"""

from __future__ import annotations

import numpy as np


def qcut_quantiles(n: int) -> np.ndarray:
    """The interior quantile levels ``pandas.qcut(x, n)`` asks for: ``linspace(0, 1, n + 1)``, each level whose
    ``n * level`` is not exactly its index rounded up by one ulp (pandas >= 2.2, ``reshape/tile.py``)."""
    q = np.linspace(0.0, 1.0, n + 1)
    q = np.where(n * q != np.arange(n + 1), np.nextafter(q, 1.0), q)
    return q[1:n]


def _edges_sorted(v: np.ndarray, m: np.ndarray, n: int) -> np.ndarray:
    """Interior edges ``[T, n-1]`` from sorted rows ``v`` with ``m`` finite values, with the arithmetic of
    ``numpy.quantile(method="linear")`` that ``pandas.qcut`` calls, operation for operation, so that a value on an
    edge lands in the same layer: virtual index ``h = (m - 1) * q``, ``lo = floor(h)``, weight ``g = h - lo``, and
    numpy's two-sided lerp (``a + (b - a) g`` for ``g < 0.5``, ``b - (b - a)(1 - g)`` otherwise; at or beyond the
    last index both neighbours are the last value)."""
    q = qcut_quantiles(n)
    last = np.maximum(m, 1) - 1
    h = last[:, None].astype(np.float64) * q[None, :]
    lo = np.floor(h)
    top = h >= last[:, None]
    i_lo = np.where(top, last[:, None], lo).astype(np.int64)
    i_hi = np.where(top, last[:, None], lo + 1).astype(np.int64)
    g = h - lo
    a = np.take_along_axis(v, i_lo, axis=1)
    b = np.take_along_axis(v, i_hi, axis=1)
    with np.errstate(invalid="ignore"):
        d = b - a
        return np.where(g >= 0.5, b - d * (1.0 - g), a + d * g)


def _layer_bounds(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One sort per row -> (order, sorted values, finite counts m, bounds ``[T, n+1]``): the sorted positions
    ``[bounds[k-1], bounds[k])`` form layer k. ``bounds[i] = #{x <= q_i}``, so ties never straddle a boundary."""
    from quantsam.crosssection import sort_rows

    order, v = sort_rows(np.asarray(x, dtype=np.float64))
    m = np.isfinite(v).sum(axis=1)
    edges = _edges_sorted(v, m, n)
    bounds = np.empty((x.shape[0], n + 1), dtype=np.int64)
    bounds[:, 0] = 0
    bounds[:, n] = m
    for i in range(n - 1):
        bounds[:, i + 1] = (v <= edges[:, i:i + 1]).sum(axis=1)
    return order, v, m, bounds


def assign_layers(x: np.ndarray, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``[T, N]`` int8 layer 1..n of each finite value (0 = no value), and a ``[T]`` mask of rows that were skipped
    because they had fewer than ``n`` finite values."""
    if n < 2:
        raise ValueError(f"n_quantiles={n} must be >= 2")
    x = np.asarray(x, dtype=np.float64)
    T, N = x.shape
    order, _, m, bounds = _layer_bounds(x, n)
    inc = np.zeros((T, N + 1), dtype=np.int8)
    for i in range(1, n):  # layer of sorted position j = 1 + #{i : j >= bounds[i]}
        np.add.at(inc, (np.arange(T), bounds[:, i]), 1)
    layer_sorted = (1 + np.cumsum(inc, axis=1)[:, :N]).astype(np.int8)
    layer_sorted[np.arange(N)[None, :] >= m[:, None]] = 0
    skipped = m < n
    layer_sorted[skipped] = 0
    layer = np.empty((T, N), dtype=np.int8)
    np.put_along_axis(layer, order, layer_sorted, axis=1)
    return layer, skipped


def layer_returns(x: np.ndarray, y: np.ndarray, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``[T, n]`` mean of ``y`` per factor layer of ``x`` over names where both are finite, and the skipped-rows mask.
    One sort of ``x`` and a cumulative sum of ``y`` in factor order; layer sums are differences at the bounds.
    Runs in blocks of rows (bounded temporaries)."""
    from quantsam.crosssection import BLOCK

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) > BLOCK:
        parts = [_layer_returns(x[r:r + BLOCK], y[r:r + BLOCK], n) for r in range(0, len(x), BLOCK)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return _layer_returns(x, y, n)


def _layer_returns(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    both = np.isfinite(x) & np.isfinite(y)
    order, _, m, bounds = _layer_bounds(np.where(both, x, np.nan), n)
    ys = np.take_along_axis(np.where(both, y, 0.0), order, axis=1)
    cs = np.concatenate([np.zeros((len(ys), 1)), np.cumsum(ys, axis=1)], axis=1)
    sums = np.diff(np.take_along_axis(cs, bounds, axis=1), axis=1)
    cnt = np.diff(bounds, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan)
    skipped = m < n
    out[skipped] = np.nan
    return out, skipped


def layer_means(layer: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """``[T, n]`` mean of ``values`` in each layer of a given ``layer`` array (NaN where a layer is empty)."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    out = np.full((layer.shape[0], n), np.nan)
    for k in range(1, n + 1):
        m = (layer == k) & ok
        cnt = m.sum(axis=1)
        s = np.where(m, v, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k - 1] = np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)
    return out


def equal_weight_turnover(member: np.ndarray) -> np.ndarray:
    """Two-sided turnover ``sum_i |w_t,i - w_{t-1},i|`` of an equal-weight portfolio over the ``member`` mask rows
    (first row: NaN; weights rebalanced back to equal at every row, drift ignored)."""
    cnt = member.sum(axis=1, keepdims=True)
    w = np.where(member, 1.0 / np.maximum(cnt, 1), 0.0)
    out = np.full(member.shape[0], np.nan)
    out[1:] = np.abs(w[1:] - w[:-1]).sum(axis=1)
    return out
