"""``make mlflow-ui``'s first lines: a link per experiment in the store, opened on its comparison view.

    python -m quantsam.tracking.ui sqlite:///mlruns.db 5000 [experiment]

Finds the experiments in the store (creating nothing) — every one that holds runs, or the one named; studies log to
their own (``tracking.experiment``: ``quantsam`` by default, ``real_arms`` for ``experiment=real_arms``). An
experiment made before the comparison view existed gets its view tag here
(:data:`quantsam.tracking.mlflow_run.VIEW_TAG`), so the link opens on the headline columns, and a store written
before runs were retired from the view has its older copies of each work retired here
(:func:`quantsam.tracking.mlflow_run.retire_superseded`).
"""

from __future__ import annotations

import sys


def prepare(client, experiment) -> int:
    """Make ``experiment`` (an MLflow Experiment) open as its comparison view: the view tag written, the older copies
    of each work retired from it. Returns how many runs were retired now."""
    from quantsam.tracking.mlflow_run import retire_superseded, set_comparison_view

    set_comparison_view(client, experiment)
    return retire_superseded(client, experiment.experiment_id)


def links(uri: str, port: int, experiment: str | None = None) -> list[str]:
    """The lines ``make mlflow-ui`` prints first: ``open <link>`` per experiment (with a note when runs were retired
    from its view), or why there is nothing to open."""
    import os

    from mlflow import MlflowClient

    from quantsam.tracking.mlflow_run import SUPERSEDED_TAG, ui_link

    base = f"http://127.0.0.1:{port}"
    if uri.startswith("sqlite:///") and not os.path.exists(uri[len("sqlite:///"):]):
        return [f"open {base} (no runs yet: `make demo` first)"]
    client = MlflowClient(uri)
    if experiment is not None:
        exps = [e for e in [client.get_experiment_by_name(experiment)] if e is not None]
        missing = f"no experiment '{experiment}' yet"
    else:
        exps = [e for e in client.search_experiments() if client.search_runs([e.experiment_id], max_results=1)]
        missing = "no runs yet"
    if not exps:
        return [f"open {base} ({missing}: `make demo` first)"]
    lines = []
    for exp in sorted(exps, key=lambda e: int(e.experiment_id) if e.experiment_id.isdigit() else 0):
        n = prepare(client, exp)
        lines.append(f"open {ui_link(base, exp.experiment_id)}  (experiment '{exp.name}': the current training runs, "
                     "grouped by optimizer, with their headline metrics)")
        if n:
            lines.append(f"  {n} older run(s) of work that has a newer run now carry the tag {SUPERSEDED_TAG} "
                         "(hidden from the view, kept in the store)")
    return lines


def main(argv: list[str] | None = None) -> None:
    a = list(sys.argv[1:] if argv is None else argv)
    print("\n".join(links(a[0], int(a[1]), *(a[2:3]))))


if __name__ == "__main__":
    main()
