"""The embedded synthetic A-share market: the default data set, so the whole pipeline runs on a fresh machine.

Deterministic per seed and vectorised over stocks (the only Python loop is over trading days, because volatility
clustering, price limits and the planted signal are path-dependent). What it models:

* returns from a factor structure: market (GARCH(1,1), Student-t shocks), ~30 industries, a size factor, and
  idiosyncratic GARCH noise with fat tails;
* a **planted price-volume signal** ``alpha`` (expected return known at the close) built from observable bars: a fast
  part (5-day reversal amplified by abnormal volume, close-vs-VWAP pressure) that daily K-lines show best, and a slow
  part (12-week momentum, low range) that weekly K-lines show best; each part's strength drifts over time, so a model can
  learn it, overfit it, and see it fade;
* news jumps (``jump_rate`` per stock-day, mostly up, often through the limit) that are partly given back over the
  next weeks — the limit-move frequencies, fat tails and short-term reversal of real A-shares;
* boards and price limits (main +-10%, ChiNext +-10% then +-20% from 2020-08-24, STAR +-20%, ST +-5%); a move beyond
  the limit is clipped and carried to the next day, and strong limit days are one-price (O = H = L = C);
* suspensions (no rows), IPOs (STAR only after 2019-07-22), delistings (usually after an ST spell), ST episodes;
* ex-rights events (cash dividends, bonus shares) moving ``preclose`` and ``adj_factor``;
* three index tiers ``000300.SH``, ``000905.SH``, ``000852.SH`` built point-in-time from 120-day average float cap,
  reconstituted after the second Friday of June and December, cap-weighted with weights summing to 1 every day.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantsam.config.schema import INDEX_CODES as SCHEMA_INDEX_CODES
from quantsam.data.calendar import synthetic_calendar
from quantsam.data.contract import BOARDS, COLUMNS, limit_pct, limit_prices

#: bump when the generator's output changes for the same arguments (invalidates cached market directories)
GENERATOR_VERSION = 2
INDEX_CODES = tuple(SCHEMA_INDEX_CODES.values())  # tiers 0, 1, 2: CSI300, CSI500, CSI1000
TIER_SIZES = (300, 500, 1000)
FULL_TIERS_AT = 1800  # eligible stocks needed for full-size tiers; fewer scale the tiers proportionally
STAR_OPEN = pd.Timestamp("2019-07-22")

INDUSTRIES = (
    "Banks", "NonBankFinancials", "RealEstate", "Construction", "BuildingMaterials", "Steel", "NonferrousMetals",
    "Coal", "Petroleum", "BasicChemicals", "Utilities", "Transportation", "Autos", "HomeAppliances", "Textiles",
    "LightManufacturing", "Commerce", "Consumer Services", "FoodBeverage", "Agriculture", "Pharmaceuticals",
    "Machinery", "PowerEquipment", "Defense", "Electronics", "Computers", "Media", "Telecom", "Environmental",
    "Beauty",
)


@dataclass
class SyntheticMarket:
    """A generated market. Frames follow the data contract (:mod:`quantsam.data.contract`)."""

    daily: pd.DataFrame
    index_members: pd.DataFrame
    index_weights: pd.DataFrame
    industry: pd.DataFrame
    alpha: pd.DataFrame  # wide [dates x codes]: planted expected daily return for t+1.., known at t close; NaN = no row
    calendar: pd.DatetimeIndex
    params: dict = field(default_factory=dict)


def _zscore_rows(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score of a 1-D vector over ``valid`` names, clipped to +-3; other names 0."""
    n = valid.sum()
    if n < 3:
        return np.zeros_like(x)
    v = np.where(valid, x, 0.0)
    mu = v.sum() / n
    d = np.where(valid, x - mu, 0.0)
    sd = np.sqrt((d * d).sum() / n)
    return np.clip(d / (sd if sd > 0 else 1.0), -3.0, 3.0)


def _codes_and_boards(n: int, rng: np.random.Generator, star_open: bool) -> tuple[np.ndarray, np.ndarray]:
    # SH main, SZ main, ChiNext, STAR (no STAR names when the period ends before the STAR market opened)
    share = np.array([0.38, 0.36, 0.20, 0.06]) if star_open else np.array([0.40, 0.38, 0.22, 0.0])
    counts = np.floor(share * n).astype(int)
    counts[0] += n - counts.sum()
    # (first number, exchange, board, code space): 600000-605999, 000001-003999, 300001-301999, 688001-689999
    prefixes = [(600000, "SH", "main", 6000), (1, "SZ", "main", 3999), (300001, "SZ", "chinext", 1999),
                (688001, "SH", "star", 1999)]
    codes, boards = [], []
    for (base, ex, board, space), c in zip(prefixes, counts, strict=True):
        if c > space:
            raise ValueError(f"n_stocks={n}: more {board} names ({c}) than codes in its range ({space})")
        nums = base + np.sort(rng.choice(space, size=c, replace=False))
        codes += [f"{k:06d}.{ex}" for k in nums]
        boards += [board] * c
    order = np.argsort(codes)
    return np.asarray(codes)[order], np.asarray(boards)[order]


@dataclass
class _Stocks:
    """Static attributes drawn once per stock."""

    codes: np.ndarray
    board: np.ndarray
    industry: np.ndarray
    log_shares: np.ndarray
    log_price0: np.ndarray
    size_expo: np.ndarray
    beta: np.ndarray
    idio_vol: np.ndarray
    log_turn: np.ndarray


@dataclass
class _Listing:
    """When each stock trades: first/last day, ST spells, and the [T, N] traded mask (suspensions removed)."""

    first: np.ndarray
    last: np.ndarray
    st_start: np.ndarray
    st_end: np.ndarray
    rows_alive: np.ndarray
    traded: np.ndarray


@dataclass
class _Paths:
    """Market-wide random series drawn up front: market shocks, industry and size factor returns, signal strength."""

    z_mkt: np.ndarray
    f_ind: np.ndarray
    f_size: np.ndarray
    s_fast: np.ndarray
    s_slow: np.ndarray


@dataclass
class _Bars:
    """The simulated ``[T, N]`` outputs (NaN where no row)."""

    O: np.ndarray
    H: np.ndarray
    L: np.ndarray
    C: np.ndarray
    PC: np.ndarray
    V: np.ndarray
    AMT: np.ndarray
    ADJ: np.ndarray
    FS: np.ndarray
    ALPHA: np.ndarray
    IS_ST: np.ndarray


DF_T = 4.0  # Student-t degrees of freedom of every shock
T_SCALE = 1 / np.sqrt(DF_T / (DF_T - 2))  # unit variance
H_LEN = 64  # ring buffers of the last H_LEN days feed the planted signal


def _draw_stocks(rng: np.random.Generator, N: int, n_industries: int, star_open: bool) -> _Stocks:
    codes, board = _codes_and_boards(N, rng, star_open=star_open)
    ind_w = rng.dirichlet(np.full(n_industries, 2.0))
    industry = rng.choice(n_industries, size=N, p=ind_w)
    log_shares = rng.normal(np.log(6e8), 0.9, N)
    log_price0 = rng.normal(np.log(12.0), 0.6, N)
    size_expo = -(log_shares + log_price0 - (log_shares + log_price0).mean()) / (log_shares + log_price0).std()
    beta = rng.normal(1.0, 0.25, N).clip(0.3, 2.0)
    idio_vol = 0.017 * np.exp(rng.normal(0, 0.25, N)) * (1 + 0.15 * size_expo.clip(-1, 2))
    idio_vol *= np.where(board == "main", 1.0, 1.3)
    log_turn = rng.normal(np.log(0.012), 0.5, N) + np.where(board == "main", 0.0, 0.5)
    return _Stocks(codes, board, industry, log_shares, log_price0, size_expo, beta, idio_vol, log_turn)


def _draw_listing(rng: np.random.Generator, T: int, board: np.ndarray, star_lo: int) -> _Listing:
    """IPOs (STAR only after its opening), delistings (usually after an ST spell), ST episodes, suspensions."""
    N = len(board)
    # most main/ChiNext names trade from the start; the rest IPO over the period (STAR after 2019-07-22)
    first = np.zeros(N, dtype=np.int64)
    ipo = rng.random(N) < 0.12
    star = board == "star"
    ipo |= star
    span_hi = T - 120
    first[ipo & ~star] = rng.integers(20, span_hi, size=(ipo & ~star).sum())
    first[star] = rng.integers(max(star_lo, 20), span_hi, size=star.sum())
    last = np.full(N, T - 1, dtype=np.int64)
    delist = (rng.random(N) < 0.05) & (first < T - 700)
    last[delist] = first[delist] + rng.integers(600, np.maximum(601, T - first[delist]), size=delist.sum())
    last = np.minimum(last, T - 1)

    # ST episodes: ~7% of names get a spell; delisting names are ST for their last ~250 days
    st_start = np.full(N, T + 1)
    st_end = np.full(N, T + 1)
    ep = (rng.random(N) < 0.07) & (last - first > 400)
    st_start[ep] = first[ep] + rng.integers(250, np.maximum(251, last[ep] - first[ep] - 100), size=ep.sum())
    st_end[ep] = st_start[ep] + rng.integers(120, 500, size=ep.sum())
    st_start[delist] = np.maximum(first[delist] + 60, last[delist] - 250)
    st_end[delist] = T + 1

    # suspensions: spells start with prob 0.0015/day, geometric length (mean ~6 days), some long (~60 days)
    susp = np.zeros((T, N), dtype=bool)
    starts = rng.random((T, N)) < 0.0015
    tt, ii = np.nonzero(starts)
    lengths = np.where(rng.random(len(tt)) < 0.1, rng.integers(20, 120, len(tt)), rng.geometric(1 / 6, len(tt)))
    for k in range(1, 121):  # mark spells by offset; vectorised over spells
        m = lengths >= k
        if not m.any():
            break
        r = tt[m] + k - 1
        ok = r < T
        susp[r[ok], ii[m][ok]] = True
    rows_alive = (np.arange(T)[:, None] >= first[None, :]) & (np.arange(T)[:, None] <= last[None, :])
    for j in range(N):  # never suspend the first 5 or the last day of a listing (keeps IPO / delist dates crisp)
        susp[first[j]:first[j] + 5, j] = False
        susp[last[j], j] = False
    return _Listing(first, last, st_start, st_end, rows_alive, rows_alive & ~susp)


def _draw_paths(rng: np.random.Generator, T: int, n_industries: int) -> _Paths:
    z_mkt = rng.standard_t(DF_T, size=T) * T_SCALE
    f_ind = rng.normal(0, 0.008, size=(T, n_industries))
    f_size = rng.normal(0.0002, 0.005, size=T)
    # signal strengths drift (bounded random walks in log space) -> the planted structure is non-stationary
    s_fast = np.exp(np.clip(np.cumsum(rng.normal(0, 0.03, T)), -1.2, 0.6))
    s_slow = np.exp(np.clip(np.cumsum(rng.normal(0, 0.03, T)), -1.2, 0.6))
    return _Paths(z_mkt, f_ind, f_size, s_fast, s_slow)


def _simulate_days(rng: np.random.Generator, dates64: np.ndarray, st: _Stocks, lst: _Listing, pth: _Paths,
                   signal_strength: float, jump_rate: float = 0.0, jump_rng: np.random.Generator | None = None
                   ) -> _Bars:
    """The day loop (path-dependent: volatility clustering, limits with carry, the planted signal). Mutates
    ``lst.last`` / ``lst.rows_alive`` / ``lst.traded`` for face-value delistings."""
    T, N = len(dates64), len(st.codes)
    nan = lambda: np.full((T, N), np.nan)  # noqa: E731
    out = _Bars(nan(), nan(), nan(), nan(), nan(), nan(), nan(), nan(), nan(), nan(), np.zeros((T, N), dtype=bool))
    first, last, traded, rows_alive = lst.first, lst.last, lst.traded, lst.rows_alive
    close = np.exp(st.log_price0).round(2).clip(1.0)
    adj = np.ones(N)
    shares = np.exp(st.log_shares).round(-4)
    pending = np.zeros(N)  # return not yet realised (limit clipping, suspension)
    pending[first > 0] = rng.uniform(0.1, 0.44, (first > 0).sum())  # IPO pop on day one (no limit on day one)
    h_mkt = 0.014**2
    h_idio = st.idio_vol**2
    vol_shock = np.zeros(N)
    ret_hist = np.zeros((H_LEN, N))  # realised return, (close - vwap) / vwap, volume shock, range: last H_LEN days
    cv_hist = np.zeros((H_LEN, N))
    vshock_hist = np.zeros((H_LEN, N))
    range_hist = np.zeros((H_LEN, N))
    mu = np.zeros(N)  # planted expected daily return for the next day (EMA of signal)
    k_alpha = 0.0015 * signal_strength
    age = np.zeros(N, dtype=np.int64)
    below_one = np.zeros(N, dtype=np.int64)
    overreaction = np.zeros(N)  # the part of past jumps not yet given back

    for t in range(T):
        alive = rows_alive[t]
        tr = traded[t]
        is_st = (t >= lst.st_start) & (t < lst.st_end)
        # --- returns: factor structure + planted alpha -------------------------------------------------------
        e_m = np.sqrt(h_mkt) * pth.z_mkt[t]
        h_mkt = 1.5e-6 + 0.08 * e_m**2 + 0.91 * h_mkt
        z = rng.standard_t(DF_T, size=(5, N))
        z[0] *= T_SCALE
        z_idio, z_gap, z_vw, z_vol = z[0], z[1] * T_SCALE, z[2] * T_SCALE, z[3] * T_SCALE
        z_hi, z_lo = np.abs(rng.normal(size=(2, N)))
        u = rng.random((4, N))
        u_onep, exr, exr_split, exr_size = u[0], u[1] < 1 / 260, u[2] < 0.2, u[3]
        e_i = np.sqrt(h_idio) * z_idio
        h_idio = st.idio_vol**2 * 0.04 + 0.08 * e_i**2 + 0.88 * h_idio
        r = (0.0004 + st.beta * e_m + pth.f_ind[t, st.industry] + st.size_expo * pth.f_size[t]
             + e_i * np.where(is_st, 1.3, 1.0) + mu)
        if jump_rate > 0:  # news jumps: unforecastable, mostly up, often through the limit (then carried) ...
            jump = _jumps(jump_rng, N, jump_rate)
            r = r + jump - JUMP_REVERT * JUMP_DECAY * overreaction  # ... and partly given back over the next weeks
            overreaction = (1 - JUMP_DECAY) * overreaction + jump
        desired = (1 + pending) * (1 + r) - 1
        # --- ex-rights on this day (only for names trading yesterday and today) ------------------------------
        ratio = np.ones(N)
        ev = exr & tr & (age > 5)
        cash = ev & ~exr_split
        ratio[cash] = 1 / (1 - (0.005 + 0.025 * exr_size[cash]))
        split = ev & exr_split
        ratio[split] = 1 + (0.2 + 0.8 * exr_size[split]).round(1)
        preclose = np.where(ev, (close / ratio).round(2), close)
        preclose = np.maximum(preclose, 0.01)
        adj = np.where(ev, adj * close / preclose, adj)
        shares = np.where(split, (shares * ratio).round(-4), shares)
        # --- price limits (the contract's rule), clipping with carry -----------------------------------------
        up, down = limit_prices(preclose, limit_pct(st.board, is_st, np.full(N, dates64[t])))
        no_limit = age < 1  # IPO day: no limit
        up = np.where(no_limit, np.inf, up)
        down = np.where(no_limit, 0.01, down)
        target = np.maximum(preclose * (1 + desired), 0.01)
        cl = np.clip(np.round(target, 2), down, up)
        one_up = tr & (target > up * 1.02) & (u_onep < 0.6)
        one_dn = tr & (target < down * 0.98) & (u_onep < 0.6)
        sig = np.sqrt(h_idio + h_mkt)
        op = np.clip(np.round(preclose * (1 + 0.35 * (cl / preclose - 1) + 0.4 * sig * z_gap), 2), down, up)
        hi = np.clip(np.round(np.maximum(op, cl) * (1 + 0.45 * sig * z_hi), 2), down, up)
        lo = np.clip(np.round(np.minimum(op, cl) * (1 - 0.45 * sig * z_lo), 2), down, up)
        hi = np.maximum.reduce([hi, op, cl])
        lo = np.minimum.reduce([lo, op, cl])
        op = np.where(one_up, up, np.where(one_dn, down, op))
        hi = np.where(one_up, up, np.where(one_dn, down, hi))
        lo = np.where(one_up, up, np.where(one_dn, down, lo))
        cl = np.where(one_up, up, np.where(one_dn, down, cl))
        w = np.clip(0.5 + 0.15 * z_vw, 0.05, 0.95)
        vw = lo + (hi - lo) * (0.6 * w + 0.4 * np.clip((cl - lo) / np.maximum(hi - lo, 1e-9), 0, 1))
        vol_shock = 0.85 * vol_shock + 0.3 * z_vol
        turn = np.exp(st.log_turn + vol_shock + 12 * np.abs(cl / preclose - 1))
        turn = np.where(one_up | one_dn, turn * 0.15, turn)
        vol = np.maximum(np.round(shares * np.minimum(turn, 0.5) / 100) * 100, 100)
        amt = vw * vol
        realised = cl / preclose - 1
        # carry the unrealised part; suspended names carry the whole day's move
        # (names not yet listed keep their IPO pop; delisted names are never read again)
        pending = np.where(tr, (1 + desired) / (1 + realised) - 1, np.where(alive, desired, pending))
        pending = np.clip(pending, -0.6, 1.5)
        # --- store rows for traded names -----------------------------------------------------------------------
        out.O[t, tr], out.H[t, tr], out.L[t, tr], out.C[t, tr] = op[tr], hi[tr], lo[tr], cl[tr]
        out.PC[t, tr], out.V[t, tr], out.AMT[t, tr] = preclose[tr], vol[tr], amt[tr]
        out.ADJ[t, tr], out.FS[t, tr] = adj[tr], shares[tr]
        out.IS_ST[t] = is_st & tr
        close = np.where(tr, cl, preclose)
        # face-value delisting (SSE/SZSE rule since 2020): 20 consecutive closes below 1 CNY -> last day is today
        below_one = np.where(tr, np.where(cl < 1.0, below_one + 1, 0), below_one)
        gone = np.nonzero((below_one >= 20) & (last > t))[0]
        if len(gone):
            last[gone] = t
            rows_alive[t + 1:, gone] = False
            traded[t + 1:, gone] = False
        age += alive.astype(np.int64)
        # --- planted signal from observable bars up to t ----------------------------------------------------
        h = t % H_LEN
        ret_hist[h] = np.where(tr, realised, 0.0)
        cv_hist[h] = np.where(tr, (cl - vw) / vw, 0.0)
        vshock_hist[h] = np.where(tr, vol_shock, 0.0)
        range_hist[h] = np.where(tr, (hi - lo) / preclose, 0.0)
        valid = tr & (age > 20)
        last5 = [(t - k) % H_LEN for k in range(min(5, t + 1))]
        last20 = [(t - k) % H_LEN for k in range(min(20, t + 1))]
        mom = [(t - k) % H_LEN for k in range(5, min(60, t + 1))]
        r5 = ret_hist[last5].sum(0)
        vs5 = vshock_hist[last5].mean(0)
        f_rev = _zscore_rows(-r5 * (1 + 0.8 * np.clip(vs5, -1, 2)), valid)
        f_cv = _zscore_rows(-cv_hist[last5].mean(0), valid)
        f_mom = _zscore_rows(ret_hist[mom].sum(0) if mom else np.zeros(N), valid)
        f_rng = _zscore_rows(-range_hist[last20].mean(0), valid)
        signal = pth.s_fast[t] * (0.55 * f_rev + 0.35 * f_cv) + pth.s_slow[t] * (0.5 * f_mom + 0.3 * f_rng)
        mu = np.where(valid, 0.8 * mu + 0.2 * k_alpha * signal, 0.0)
        # the planted expected return of t+1 known at t's close: the signal, and the reversal of past jumps
        out.ALPHA[t, tr] = mu[tr] if jump_rate == 0 else (mu - JUMP_REVERT * JUMP_DECAY * overreaction)[tr]
    return out


JUMP_UP_SHARE = 0.7  # real A-shares close at the up limit ~1.8x as often as at the down limit (scripts/market_stats.py)
JUMP_MEAN = 0.08  # a jump is 4% plus an exponential of this mean
JUMP_REVERT = 0.25  # the share of a jump given back (overreaction), ...
JUMP_DECAY = 0.1  # ... at this rate per day (half-life ~7 days): what makes real A-shares' short-term reversal


def _jumps(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """One day's news jumps: each name jumps with probability ``rate``, up with probability :data:`JUMP_UP_SHARE`,
    by 4% plus an exponential of mean :data:`JUMP_MEAN` (so ~47% of them pass a 10% limit and carry into the next
    day)."""
    u = rng.random((3, n))
    size = 0.04 - JUMP_MEAN * np.log1p(-u[2])
    return np.where(u[0] < rate, np.where(u[1] < JUMP_UP_SHARE, size, -size), 0.0)


def _daily_frame(dates64: np.ndarray, st: _Stocks, traded: np.ndarray, b: _Bars) -> pd.DataFrame:
    """The long contract frame: one row per traded stock-day."""
    ti, ni = np.nonzero(traded)
    board_code = np.array([BOARDS.index(x) for x in st.board])
    return pd.DataFrame({
        "date": dates64[ti],
        "code": pd.Categorical.from_codes(ni, categories=pd.Index(st.codes)),
        "open": b.O[ti, ni], "high": b.H[ti, ni], "low": b.L[ti, ni], "close": b.C[ti, ni], "preclose": b.PC[ti, ni],
        "volume": b.V[ti, ni], "amount": b.AMT[ti, ni],
        "vwap": b.AMT[ti, ni] / b.V[ti, ni],
        "adj_factor": b.ADJ[ti, ni], "float_shares": b.FS[ti, ni], "is_st": b.IS_ST[ti, ni],
        "board": pd.Categorical.from_codes(board_code[ni], categories=list(BOARDS)),
    })[list(COLUMNS)]


def generate_market(
    seed: int = 0,
    n_stocks: int = 2000,
    start: str = "2014-01-01",
    end: str = "2024-09-30",
    n_industries: int = 30,
    signal_strength: float = 0.5,
    jump_rate: float = 0.02,
) -> SyntheticMarket:
    """Generate a synthetic A-share market (see module docstring). Same arguments => identical frames.

    The defaults are calibrated to the real market (``scripts/market_stats.py``); ``signal_strength=1.0,
    jump_rate=0`` is the earlier, easy market (``data=synthetic_strong``), drawn exactly as before jumps existed.

    Steps, in the order they draw from the seeded generator: stocks (codes, boards, industries, sizes, betas,
    volatilities, turnover) -> listing schedule (IPOs, delistings, ST spells, suspensions) -> market-wide paths ->
    the day loop -> long frames and the index tiers.
    """
    if n_stocks < 20:
        raise ValueError(f"n_stocks={n_stocks}: need at least 20 stocks")
    if not 1 <= n_industries <= len(INDUSTRIES):
        raise ValueError(f"n_industries={n_industries}: must be in [1, {len(INDUSTRIES)}]")
    rng = np.random.default_rng(seed)
    cal = synthetic_calendar(start, end)
    T, N = len(cal), n_stocks
    if T < 260:
        raise ValueError(f"start={start}, end={end}: need at least one year of trading days, got {T}")
    dates64 = cal.to_numpy()
    star_lo = int(np.searchsorted(dates64, STAR_OPEN.to_datetime64()))

    st = _draw_stocks(rng, N, n_industries, star_open=star_lo < T - 250)
    lst = _draw_listing(rng, T, st.board, star_lo)
    pth = _draw_paths(rng, T, n_industries)
    # jumps draw from their own stream, so jump_rate=0 leaves every other draw (and the market) as it was
    jump_rng = np.random.default_rng([seed, 1]) if jump_rate > 0 else None
    bars = _simulate_days(rng, dates64, st, lst, pth, signal_strength, jump_rate, jump_rng)

    daily = _daily_frame(dates64, st, lst.traded, bars)
    members, weights = _build_indices(cal, st.codes, lst.traded, bars.C, bars.FS, bars.IS_ST, lst.first)
    industry_df = pd.DataFrame({"code": st.codes, "industry": np.asarray(INDUSTRIES[:n_industries])[st.industry]})
    alpha = pd.DataFrame(bars.ALPHA, index=cal, columns=pd.Index(st.codes, name="code"))
    alpha.index.name = "date"
    params = dict(seed=seed, n_stocks=n_stocks, start=str(start), end=str(end), n_industries=n_industries,
                  signal_strength=signal_strength, jump_rate=jump_rate, generator_version=GENERATOR_VERSION)
    return SyntheticMarket(daily=daily, index_members=members, index_weights=weights, industry=industry_df,
                           alpha=alpha, calendar=cal, params=params)


def reconstitution_days(cal: pd.DatetimeIndex) -> np.ndarray:
    """Calendar positions of index reconstitutions: first trading day after the 2nd Friday of June and December."""
    out = [0]
    for y in range(cal.year.min(), cal.year.max() + 1):
        for mth in (6, 12):
            fridays = pd.date_range(f"{y}-{mth:02d}-01", periods=31, freq="D")
            fridays = fridays[(fridays.month == mth) & (fridays.dayofweek == 4)]
            k = int(np.searchsorted(cal.to_numpy(), (fridays[1] + pd.Timedelta(days=1)).to_datetime64()))
            if 0 < k < len(cal):
                out.append(k)
    return np.unique(out)


def _build_indices(cal, codes, traded, C, FS, IS_ST, first):
    """Point-in-time tiers from 120-day average float cap, cap-weighted daily (see module docstring)."""
    T, N = traded.shape
    cap = C * FS  # NaN when not traded
    close_ff = pd.DataFrame(C).ffill().to_numpy()
    fs_ff = pd.DataFrame(FS).ffill().to_numpy()
    cap_ff = close_ff * fs_ff
    last = np.where(traded.any(0), T - 1 - np.argmax(traded[::-1], axis=0), -1)
    rebal = reconstitution_days(cal)
    tier = np.full((T, N), -1, dtype=np.int8)
    member_rows = []
    for r_i, d in enumerate(rebal):
        nxt = rebal[r_i + 1] if r_i + 1 < len(rebal) else T
        ref = max(d - 1, 0)
        w0 = max(0, ref - 119)
        win = cap[w0:ref + 1]
        n_obs = np.isfinite(win).sum(0)
        avg_cap = np.where(n_obs > 0, np.nansum(win, axis=0) / np.maximum(n_obs, 1), np.nan)
        age_ok = (d - first >= 63) | (d == 0)
        eligible = np.isfinite(avg_cap) & age_ok & ~IS_ST[ref] & (last >= d) & (first <= ref)
        n_el = int(eligible.sum())
        scale = min(1.0, n_el / FULL_TIERS_AT)
        sizes = [int(round(s * scale)) for s in TIER_SIZES]
        order = np.argsort(-np.where(eligible, avg_cap, -np.inf), kind="stable")
        pos = 0
        for k, sz in enumerate(sizes):
            chosen = order[pos:pos + sz]
            chosen = chosen[eligible[chosen]]
            pos += sz
            end_pos = np.minimum(nxt - 1, last[chosen])
            for j, e in zip(chosen, end_pos, strict=True):
                tier[d:e + 1, j] = k
                member_rows.append((k, j, d, e))
    m = pd.DataFrame(member_rows, columns=["tier", "j", "s", "e"])
    # merge adjacent intervals of the same stock in the same tier
    m = m.sort_values(["tier", "j", "s"]).reset_index(drop=True)
    new = (m["tier"].ne(m["tier"].shift())) | (m["j"].ne(m["j"].shift())) | (m["s"].ne(m["e"].shift() + 1))
    m["grp"] = new.cumsum()
    m = m.groupby("grp").agg(tier=("tier", "first"), j=("j", "first"), s=("s", "min"), e=("e", "max"))
    members = pd.DataFrame({
        "index_code": np.asarray(INDEX_CODES)[m["tier"].to_numpy()],
        "code": np.asarray(codes)[m["j"].to_numpy()],
        "start_date": cal[m["s"].to_numpy()],
        "end_date": cal[m["e"].to_numpy()],
    }).sort_values(["index_code", "start_date", "code"]).reset_index(drop=True)
    frames = []
    for k in range(len(INDEX_CODES)):
        mem = tier == k
        w = np.where(mem, cap_ff, 0.0)
        tot = w.sum(1, keepdims=True)
        w = np.divide(w, tot, out=np.zeros_like(w), where=tot > 0)
        ti, ni = np.nonzero(mem)
        frames.append(pd.DataFrame({
            "date": cal.to_numpy()[ti],
            "index_code": pd.Categorical.from_codes(np.full(len(ti), k), categories=list(INDEX_CODES)),
            "code": pd.Categorical.from_codes(ni, categories=pd.Index(codes)),
            "weight": w[ti, ni],
        }))
    weights = pd.concat(frames, ignore_index=True)
    return members, weights
