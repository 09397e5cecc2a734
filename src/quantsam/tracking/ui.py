"""``make mlflow-ui``'s first line: the link to the project's experiment, opened on the comparison view.

    python -m quantsam.tracking.ui sqlite:///mlruns.db 5000 [experiment]

Finds the experiment in the store (creating nothing); an experiment made before the comparison view existed gets
its view tag here (:data:`quantsam.tracking.mlflow_run.VIEW_TAG`), so the link opens on the headline columns.
"""

from __future__ import annotations

import sys


def link(uri: str, port: int, experiment: str = "quantsam") -> str:
    import os

    from mlflow import MlflowClient

    from quantsam.tracking.mlflow_run import set_comparison_view, ui_link

    base = f"http://127.0.0.1:{port}"
    if uri.startswith("sqlite:///") and not os.path.exists(uri[len("sqlite:///"):]):
        return f"{base} (no runs yet: `make demo` first)"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return f"{base} (no experiment '{experiment}' yet: `make demo` first)"
    set_comparison_view(client, exp)
    return ui_link(base, exp.experiment_id)


def main(argv: list[str] | None = None) -> None:
    a = list(sys.argv[1:] if argv is None else argv)
    print(f"open {link(a[0], int(a[1]), *(a[2:3]))}  (AdamW vs GSAM: the training runs with their headline metrics)")


if __name__ == "__main__":
    main()
