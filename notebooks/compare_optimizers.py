# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       format_name: percent
# ---

# %% [markdown]
# # Compare optimizers from MLflow
#
# Loads the runs of a finished study (`make study`) from the MLflow store with `mlflow.search_runs` and rebuilds the
# main table (factor test + index enhancement per optimizer, mean over seeds) and two figures. Open it in Jupyter
# with jupytext, or run it as a script: `python notebooks/compare_optimizers.py`.
#
# Settings come from the environment: `QUANTSAM_TRACKING_URI` (default: the project's `mlruns.db`),
# `QUANTSAM_PARENT_RUN` (a study's parent run id; default: the latest sweep), `QUANTSAM_NOTEBOOK_OUT` (where the table
# and figures are written; default `notebooks/output`).

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent
URI = os.environ.get("QUANTSAM_TRACKING_URI", f"sqlite:///{ROOT / 'mlruns.db'}")
OUT = Path(os.environ.get("QUANTSAM_NOTEBOOK_OUT", ROOT / "notebooks" / "output"))
OUT.mkdir(parents=True, exist_ok=True)
mlflow.set_tracking_uri(URI)

# %%
parent = os.environ.get("QUANTSAM_PARENT_RUN")
if not parent:
    sweeps = mlflow.search_runs(experiment_names=["quantsam"], filter_string="tags.kind = 'sweep'",
                                order_by=["attributes.start_time DESC"], max_results=1)
    parent = sweeps["run_id"].iloc[0]
runs = mlflow.search_runs(experiment_names=["quantsam"], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
runs = runs[runs["status"] == "FINISHED"]
print(f"parent run {parent}: {len(runs)} finished child runs")

# %% [markdown]
# ## Main table: factor test and index enhancement, mean over seeds

# %%
KEYS = {
    "RankIC mean": "metrics.factor/rank_ic_mean", "ICIR": "metrics.factor/rank_icir",
    "IC>0": "metrics.factor/rank_ic_pos", "TOP excess": "metrics.factor/top_excess_ann",
    "TOP IR": "metrics.factor/top_ir",
    **{f"{u} excess": f"metrics.bt/{u}/excess_ann" for u in ("csi300", "csi500", "csi1000")},
    **{f"{u} IR": f"metrics.bt/{u}/info_ratio" for u in ("csi300", "csi500", "csi1000")},
    "grad evals": "metrics.cost/grad_evals",
}
present = {k: v for k, v in KEYS.items() if v in runs.columns}
table = runs.groupby("tags.optimizer")[list(present.values())].mean().rename(columns={v: k for k, v in present.items()})
order = [o for o in ("adamw", "sam", "asam", "gsam", "gam", "fsam", "wsam") if o in table.index]
table = table.loc[order].T
table.to_csv(OUT / "main_table.csv")
print(table.round(4).to_string())

# %% [markdown]
# ## Figures

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
table.loc["RankIC mean"].plot.bar(ax=axes[0], title="test RankIC (factor test)")
excess = [k for k in table.index if k.endswith(" excess") and k != "TOP excess"]
table.loc[excess].T.plot.bar(ax=axes[1], title="annualised excess by index")
fig.tight_layout()
fig.savefig(OUT / "comparison.png", dpi=100)
