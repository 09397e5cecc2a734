"""The study report hangs off the sweep: when a pipeline multirun ends, build its comparison report.

Registered after the MLflow sweep callback in ``conf/config.yaml``; Hydra runs end-of-sweep callbacks in reverse
order, so the report is logged to the parent run before that callback closes it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class StudyReportCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        import time

        from quantsam.progress import tree_cpu_seconds

        self._t0, self._cpu0 = time.perf_counter(), tree_cpu_seconds()

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from quantsam.jobresult import JobResult

        sweep_dir = Path(config.hydra.sweep.dir)
        results = JobResult.all_in(sweep_dir)
        if not config.report.get("on_sweep_end") or not any(r.factor_dir or r.backtest_dirs for r in results):
            return  # a training-only sweep (make sweep) has nothing to compare beyond MLflow
        from quantsam.config import register
        from quantsam.report.stage import run_report

        register()
        try:
            rep = run_report(config, sweep_dir)
        except Exception:  # the report must not lose the sweep's results: log and carry on
            log.exception("study report failed for %s (rerun: make report SWEEP=%s)", sweep_dir, sweep_dir)
            return
        from quantsam.report.tables import format_summary
        from quantsam.tracking.mlflow_run import Tracker, ui_link

        where = ""
        if config.tracking.enabled:
            where = (f"\nMLflow: make mlflow-ui, then open "
                     f"{ui_link('http://127.0.0.1:5000', Tracker(config.tracking).experiment_id())}")
        cost = ""
        if hasattr(self, "_t0"):
            import time

            from quantsam.progress import tree_cpu_seconds

            wall, cpu = time.perf_counter() - self._t0, tree_cpu_seconds() - self._cpu0
            cost = (f"\nthis sweep: {wall / 60:.1f} min wall, {cpu / 60:.1f} CPU-min "
                    f"(this process and its workers; {cpu / max(wall, 1e-9):.2f} cores busy on average)")
        print(f"\n{format_summary(rep.tables['summary'])}\n\nreport: {rep.html_path}{where}{cost}", flush=True)
