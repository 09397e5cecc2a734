"""Benchmark: qlib's GRU recipe (Alpha360) trained with AdamW (qlib's own ``GRU``, torch Adam) and with a quantsam
optimizer (``quantsam.contrib.qlib.SAMGRU``) on the same qlib data — whether SAM helps in the user's own qlib setup.

The dataset, segments and model settings are those of ``examples/qlib/workflow_alpha360_samgru.yaml`` (qlib's
benchmark recipe), overridable from the command line; every arm sees the same prepared dataset and the same seed.
Printed per arm: the test segment's daily RankIC (Spearman) and IC (Pearson) of the predictions against the raw
label (mean, ICIR), epochs run, wall and CPU seconds per epoch, gradient evaluations. Needs ``pip install -e
'.[qlib]'``; nothing is written except qlib's MLflow runs (``--mlflow``, default a temporary SQLite file).

    python scripts/bench/qlib_gru.py --provider ~/.qlib/qlib_data/cn_data                # CSI300, 2008-2020
    python scripts/bench/qlib_gru.py --toy /tmp/qlib_toy --epochs 2                      # a smoke run, toy market
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

EXAMPLE = Path(__file__).parents[2] / "examples" / "qlib" / "workflow_alpha360_samgru.yaml"


def daily_ic(pred: pd.Series, label: pd.Series) -> dict:
    """Per date Pearson / Spearman correlation of ``pred`` with ``label`` (both indexed by (datetime, instrument))."""
    df = pd.DataFrame({"p": pred, "y": label}).dropna()
    g = df.groupby(level="datetime")
    ic = g.apply(lambda d: d["p"].corr(d["y"]))
    ric = g.apply(lambda d: d["p"].corr(d["y"], method="spearman"))
    return {"rank_ic": ric.mean(), "rank_icir": ric.mean() / ric.std(), "ic": ic.mean(), "icir": ic.mean() / ic.std(),
            "days": len(ric)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provider", help="qlib data dir (provider_uri)")
    ap.add_argument("--toy", help="write a small synthetic qlib market here and run on it (smoke run)")
    ap.add_argument("--market", default=None, help="instruments (default: the example's csi300; 'all' with --toy)")
    ap.add_argument("--arms", default="adamw,gsam", help="adamw = qlib's own GRU with Adam; others via SAMGRU")
    ap.add_argument("--epochs", type=int, default=None, help="n_epochs (default: the recipe's 200, early stop 20)")
    ap.add_argument("--rho", type=float, default=0.05)
    ap.add_argument("--alpha", type=float, default=0.1, help="GSAM's alpha")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (never more than the cores you have)")
    ap.add_argument("--mlflow", default=None, help="MLflow tracking URI for qlib's recorder")
    a = ap.parse_args()
    if not (a.provider or a.toy):
        ap.error("give --provider <qlib data dir> or --toy <dir>")
    import qlib
    import torch
    from qlib.data.dataset.handler import DataHandlerLP
    from qlib.utils import init_instance_by_config
    from qlib.workflow import R

    torch.set_num_threads(a.threads)
    cfg = yaml.safe_load(EXAMPLE.read_text().replace("{{ QLIB_DATA | default('~/.qlib/qlib_data/cn_data', true) }}",
                                                     "unused"))
    task = cfg["task"]
    h = task["dataset"]["kwargs"]["handler"]["kwargs"]
    if a.toy:
        from quantsam.contrib.qlib_market import write_toy_qlib_market

        root = Path(a.toy)
        days = write_toy_qlib_market(root) if not (root / "calendars").exists() else \
            pd.to_datetime((root / "calendars" / "day.txt").read_text().split())
        d = lambda i: f"{days[i]:%Y-%m-%d}"  # noqa: E731
        h.update(instruments=a.market or "all", start_time=d(0), end_time=d(-1), fit_start_time=d(0),
                 fit_end_time=d(199))
        task["dataset"]["kwargs"]["segments"] = {"train": [d(61), d(199)], "valid": [d(200), d(259)],
                                                 "test": [d(260), d(-3)]}
        task["model"]["kwargs"].update(batch_size=256)
        provider = str(root)
    else:
        provider = os.path.expanduser(a.provider)
        if a.market:
            h["instruments"] = a.market
    uri = a.mlflow or f"sqlite:///{tempfile.mkdtemp(prefix='qlib_gru_')}/mlruns.db"
    qlib.init(provider_uri=provider, region="cn", kernels=a.threads,
              exp_manager={"class": "MLflowExpManager", "module_path": "qlib.workflow.expm",
                           "kwargs": {"uri": uri, "default_exp_name": "qlib_gru_bench"}})
    t0 = time.perf_counter()
    dataset = init_instance_by_config(task["dataset"])
    label = dataset.prepare("test", col_set="label", data_key=DataHandlerLP.DK_R).iloc[:, 0]
    print(f"data: {provider} ({h['instruments']}), dataset prepared in {time.perf_counter() - t0:.0f} s; "
          f"segments {task['dataset']['kwargs']['segments']}")
    rows = []
    for arm in a.arms.split(","):
        kw = {k: v for k, v in task["model"]["kwargs"].items() if k not in ("optimizer", "optimizer_kwargs",
                                                                               "weight_decay")}
        if a.epochs is not None:
            kw.update(n_epochs=a.epochs)
        if arm == "adamw":
            model_cfg = {"class": "GRU", "module_path": "qlib.contrib.model.pytorch_gru",
                         "kwargs": {**kw, "optimizer": "adam"}}
        else:
            okw = {"rho": a.rho, **({"alpha": a.alpha} if arm == "gsam" else {})}
            model_cfg = {"class": "SAMGRU", "module_path": "quantsam.contrib.qlib",
                         "kwargs": {**kw, "optimizer": arm, "optimizer_kwargs": okw, "weight_decay": 0.0}}
        model = init_instance_by_config(model_cfg)
        evals: dict = {}
        w0, c0 = time.perf_counter(), time.process_time()
        with R.start(experiment_name="qlib_gru_bench", recorder_name=arm):
            model.fit(dataset, evals_result=evals)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        epochs = max(1, len(evals.get("train", [])))
        pred = model.predict(dataset, segment="test")
        m = daily_ic(pred, label)
        evals_n = getattr(model, "grad_evals", None)
        rows.append((arm, m, epochs, wall / epochs, cpu / epochs, evals_n))
        print(f"{arm}: done in {wall:.0f} s")
    print(f"\n{'arm':>8} {'RankIC':>8} {'RankICIR':>9} {'IC':>8} {'ICIR':>7} {'days':>5} {'epochs':>6} "
          f"{'wall s/ep':>9} {'CPU s/ep':>9} {'grad evals':>10}")
    for arm, m, ep, ws, cs, ge in rows:
        print(f"{arm:>8} {m['rank_ic']:>8.4f} {m['rank_icir']:>9.3f} {m['ic']:>8.4f} {m['icir']:>7.3f} "
              f"{m['days']:>5d} {ep:>6d} {ws:>9.2f} {cs:>9.2f} {'(qlib: 1/step)' if ge is None else ge:>10}")
    if len(rows) > 1:
        base = rows[0][1]["rank_ic"]
        for arm, m, *_ in rows[1:]:
            print(f"{arm} - {rows[0][0]}: test RankIC {m['rank_ic'] - base:+.4f}")


if __name__ == "__main__":
    main()
