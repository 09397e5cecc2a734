"""One pipeline job's result, as the pipeline writes it (``<job dir>/result.json``) and the study report reads it.

The one definition of that file: the pipeline fills a :class:`JobResult` and :meth:`JobResult.write` s it; the report
(and the sweep-end callback) :meth:`JobResult.read` s it — a file missing a field, or from another version, fails
there with the file named, not as a ``KeyError`` deep in the report.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from quantsam.errors import DataError
from quantsam.stageio import atomic_write_text

FILE = "result.json"


@dataclass
class JobResult:
    """Where one job's stage outputs are (paths as strings, None when the stage did not run)."""

    optimizer: str  # the arm (e.g. adamw_matched)
    optimizer_name: str  # the optimizer behind it (adamw)
    seed: int
    work_dir: str | None  # the training work dir
    run_id: str | None  # its MLflow run
    complete: bool = True
    stage_seconds: dict = field(default_factory=dict)
    data_dir: str | None = None
    data_fingerprint: str | None = None
    signal: str | None = None  # <signal folder>/signal.parquet
    factor_dir: str | None = None
    backtest_dirs: dict[str, str] = field(default_factory=dict)  # universe -> folder

    @property
    def signal_dir(self) -> Path | None:
        return Path(self.signal).parent if self.signal else None

    def write(self, job_dir: str | Path) -> Path:
        """``<job_dir>/result.json``, written atomically (a crash leaves the previous file or none)."""
        return atomic_write_text(Path(job_dir) / FILE, json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, path: str | Path) -> JobResult:
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"{p}: not a readable job result ({type(e).__name__}). Fix: rerun the job "
                            "(make pipeline / make study with the same overrides)") from None
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(doc))
        if missing:
            raise DataError(f"{p}: job result without {missing} (written by another quantsam version?). Fix: rerun "
                            "the sweep (finished stages are reused) so its jobs write their results again")
        return cls(**{k: v for k, v in doc.items() if k in names})

    @classmethod
    def all_in(cls, sweep_dir: str | Path) -> list[JobResult]:
        """Every finished job's result in a sweep directory (``<sweep dir>/*/result.json``), in job order."""
        return [cls.read(p) for p in sorted(Path(sweep_dir).glob(f"*/{FILE}"))]
