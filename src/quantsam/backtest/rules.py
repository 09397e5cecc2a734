"""Rule-based portfolios on the same signal, no solver (issue 32's baselines): policies with the simulator's
interface ``policy(fill_day, weights_before) -> target`` beside :class:`~quantsam.backtest.policy.IndexEnhancedPolicy`.

* :class:`TopNPolicy` (``portfolio.rule=top_n``): the ``top_n`` index members with the best scores at the decision
  close, equal weight, rebuilt every rebalance.
* :class:`TopkDropoutPolicy` (``portfolio.rule=topk_dropout``): qlib's ``TopkDropoutStrategy`` rule (qlib
  ``contrib/strategy/signal_strategy.py``, read, not copied): hold ``top_n`` names; each rebalance rank the holdings
  together with the best ``n_drop + top_n - holdings`` names not held, sell the holdings among the ``n_drop`` worst of
  that ranking and buy as many of the best names not held (plus any missing to reach ``top_n``); names kept keep
  their drifted weight, the bought names share the freed weight equally. Holdings that left the index or have no
  score rank last.

Both pick among the index's members at the decision date (equal weight, where the benchmark is cap-weighted: the
report states the difference). The simulator clips what the fill day forbids (suspended, one-price limits).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from quantsam.backtest.policy import record_decision, transfer_coefficient
from quantsam.features.panel import Panel
from quantsam.portfolio.risk import RiskInputs


class RulePolicy:
    """What the rule policies share: the bookkeeping of each decision (the rows the backtest's tables read)."""

    def __init__(self, sig: np.ndarray, panel: Panel, bench_w: np.ndarray, onehot: np.ndarray, s0: int, top_n: int,
                 n_drop: int, risk: RiskInputs | None = None, on_decision: Callable[[], None] | None = None):
        self.sig, self.panel, self.bench_w, self.onehot, self.s0 = sig, panel, bench_w, onehot, s0
        self.top_n, self.n_drop, self.risk, self.on_decision = int(top_n), int(n_drop), risk, on_decision
        self.rebalances: list[dict] = []
        self.active_industry: list[np.ndarray] = []
        self.active_style: list[np.ndarray] = []

    def members(self, t: int) -> np.ndarray:
        """Index members at ``t`` with a finite score."""
        return np.nonzero((self.bench_w[t] > 0) & np.isfinite(self.sig[t]))[0]

    def target(self, t: int, f: int, w_pre: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, f_local: int, w_pre: np.ndarray) -> np.ndarray:
        f = f_local + self.s0
        t = f - 1
        target = self.target(t, f, w_pre)
        cons = self.bench_w[t] > 0
        active = target - self.bench_w[t]
        cand = np.union1d(self.members(t), np.nonzero(target > 0)[0])
        row = {"date": self.panel.dates[t], "fill_date": self.panel.dates[f], "fill": f_local, "status": "rule",
               "relaxed": "", "n_candidates": len(cand), "objective": float(np.nan_to_num(self.sig[t]) @ target),
               "index_weight": float(target[cons].sum()), "n_held": int((target > 0).sum()),
               "tc": transfer_coefficient(active[cand], self.sig[t, cand])}
        risk = self.risk
        cov = risk.covariance(t) if risk is not None and t - risk.row0 >= 21 else None
        record_decision(self, t, active, row, cov)
        return target


class TopNPolicy(RulePolicy):
    """The ``top_n`` best-scored index members, equal weight."""

    def target(self, t: int, f: int, w_pre: np.ndarray) -> np.ndarray:
        m = self.members(t)
        pick = m[np.argsort(-self.sig[t, m], kind="stable")[: self.top_n]]
        out = np.zeros(len(w_pre))
        out[pick] = 1.0 / len(pick) if len(pick) else 0.0
        return out


class TopkDropoutPolicy(RulePolicy):
    """qlib's TopkDropout rule on the index members (module docstring)."""

    def target(self, t: int, f: int, w_pre: np.ndarray) -> np.ndarray:
        score = self.sig[t]
        m = self.members(t)
        held = np.nonzero(w_pre > 1e-12)[0]
        if not len(held):  # the first rebalance: buy the top_n
            return TopNPolicy.target(self, t, f, w_pre)
        in_m = np.zeros(len(w_pre), dtype=bool)
        in_m[m] = True
        # holdings that left the index or have no score rank below every member
        key = np.where(in_m & np.isfinite(score), score, -np.inf)
        held = held[np.argsort(-key[held], kind="stable")]
        others = m[~np.isin(m, held)]
        others = others[np.argsort(-score[others], kind="stable")]
        today = others[: max(0, self.n_drop + self.top_n - len(held))]
        comb = np.concatenate([held, today])
        comb = comb[np.argsort(-key[comb], kind="stable")]
        worst = set(comb[len(comb) - self.n_drop:].tolist()) if self.n_drop else set()
        sell = np.array([i for i in held if i in worst or not np.isfinite(key[i])], dtype=int)
        n_buy = len(sell) + self.top_n - len(held)
        # the best names not held; beyond qlib's candidate list only when holdings that left the index were sold too
        buy = others[: max(0, n_buy)]
        out = w_pre.copy()
        out[sell] = 0.0
        free = max(0.0, 1.0 - out.sum())
        if len(buy):
            out[buy] = free / len(buy)
        return out


#: portfolio.rule -> the rule policy (``optimizer`` is IndexEnhancedPolicy, built by the runner)
RULES = {"top_n": TopNPolicy, "topk_dropout": TopkDropoutPolicy}
