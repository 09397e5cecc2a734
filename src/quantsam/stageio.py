"""Stage I/O: stage keys, hashes, atomic writes, manifests, and the one rule by which a stage's outputs count as done.

Every cached piece of work (the market directory, each trained unit, the signal, each factor test and backtest) is
handled the same way:

* its **key** hashes everything its outputs depend on: the stage's config subtree, the hashes of the upstream
  artifacts it read, the data fingerprint of the market, and the stage's code version (bumped when its outputs change
  for the same inputs) — :func:`stage_key`;
* its outputs are written atomically (a temporary file or directory in the same folder, fsync, rename) and a
  **manifest** recording the key and every output's size is written last (:func:`write_manifest`, :class:`OutputDir`);
* it is **done** (:func:`is_done`) when the manifest exists, parses, records the same key, and every output it lists
  exists with its recorded size. Anything else is redone. Work that rewrites outputs in place first removes the old
  manifest (:func:`invalidate`), so a crash at any moment leaves either a complete, described result or no "done"
  state at all — never a manifest over outputs it does not describe.

Work that several processes may ask for at once (parallel sweep jobs) runs under :func:`locked`.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from quantsam.errors import DataError, DiskFullError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


# ---- keys and hashes ----------------------------------------------------------------------------------------------
def digest(obj: Any) -> str:
    """16 hex characters of the sha256 of ``obj`` as canonical JSON (sorted keys; non-JSON values via ``str``)."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stage_key(stage: str, version: int, **parts: Any) -> str:
    """The cache key of a stage: its name, code version and every input part (config subtree, upstream hashes,
    data fingerprint), hashed."""
    return digest({"stage": stage, "version": int(version), **parts})


def bytes_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def file_hash(path: str | Path) -> str:
    """16 hex characters of the sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


# ---- atomic writes ------------------------------------------------------------------------------------------------
def fsync_dir(directory: str | Path) -> None:
    """Make a rename inside ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_NO_ROOM = (errno.ENOSPC, errno.EDQUOT)


def disk_full(path: str | Path, e: OSError) -> DiskFullError:
    """The error for a write to ``path`` that failed with ENOSPC/EDQUOT: the path, the room left, and the fix (the
    OS error itself names no file when it comes from a write to an open one)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = f"{shutil.disk_usage(probe).free / 2**20:,.0f} MiB free there now"
    except OSError:
        free = "free space unknown"
    return DiskFullError(e.errno, f"{path}: no room to write it ({e.strerror or os.strerror(e.errno)}; {free}). Fix: free "
                                  "space on that disk, or point paths.runs (results) / paths.data (markets) at a disk "
                                  "with room; then rerun the same command — finished work is reused")


@contextlib.contextmanager
def room_for(path: str | Path) -> Iterator[None]:
    """Turn a full disk (or quota) while writing ``path`` into :class:`DiskFullError` naming it."""
    try:
        yield
    except OSError as e:
        if e.errno in _NO_ROOM and not isinstance(e, DiskFullError):
            raise disk_full(path, e) from e
        raise


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write ``path`` all-or-nothing: ``write(tmp)`` fills a temporary file in the same folder, which is fsynced and
    renamed over ``path``. A crash leaves the previous file (or none), never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with room_for(path):
            write(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, default=_json_default))


def atomic_write_parquet(df: pd.DataFrame, path: str | Path, index: bool = False) -> Path:
    return atomic_write(path, lambda p: df.to_parquet(p, index=index))


def _json_default(v: Any) -> Any:
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


# ---- manifests and the done rule ------------------------------------------------------------------------------------
def write_manifest(path: str | Path, stage: str, key: str, outputs: dict[str, str | Path] | list[str | Path],
                   **meta: Any) -> Path:
    """Record that ``outputs`` (files; paths relative to the manifest's folder are stored) are the complete result of
    ``stage`` for ``key``: each file's size and the sha256 of its bytes (:func:`file_hash`), and ``meta`` (e.g.
    ``code=code_version(...)``). Written atomically and last."""
    path = Path(path)
    items = outputs.values() if isinstance(outputs, dict) else outputs
    files, hashes = {}, {}
    for p in items:
        p = Path(p)
        rel = os.path.relpath(p, path.parent)
        files[rel] = p.stat().st_size
        hashes[rel] = file_hash(p)
    doc = {"stage": stage, "key": key, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "outputs": files,
           "hashes": hashes, **meta}
    return atomic_write_json(path, doc)


def read_manifest(path: str | Path) -> dict | None:
    """The manifest at ``path``, or None when it is missing or unreadable (a crash mid-write, a hand edit): either
    way the work it would describe is redone."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        log.warning("%s: unreadable manifest (%s); the stage will be redone", path, type(e).__name__)
        return None
    return doc if isinstance(doc, dict) and "key" in doc else None


def is_done(path: str | Path, key: str, code: str | None = None) -> bool:
    """The done rule: the manifest at ``path`` records ``key``, and each listed output exists with its size and the
    sha256 of its bytes (manifests written before hashes were recorded are checked on sizes). A result computed by
    other code than ``code`` (:func:`code_version` of the stage's modules) is still served — the key says the inputs
    are the same — but with a loud warning naming ``+rerun=true``."""
    doc = read_manifest(path)
    if doc is None or doc.get("key") != key:
        return False
    base = Path(path).parent
    hashes = doc.get("hashes") or {}
    for rel, size in doc.get("outputs", {}).items():
        f = base / rel
        if not f.is_file() or f.stat().st_size != size or (rel in hashes and file_hash(f) != hashes[rel]):
            log.warning("%s: output %s is missing or changed since it was written; redoing", path, f)
            return False
    if code is not None and doc.get("code") not in (None, code):
        warn_code_changed(path, doc.get("stage", "?"), doc.get("created", "?"))
    return True


_WARNED: set[str] = set()


def warn_code_changed(path: str | Path, stage: str, created: str) -> None:
    """Once per manifest and process: the cached result was computed by code that has changed since."""
    if str(path) in _WARNED:
        return
    _WARNED.add(str(path))
    how = (f"delete {Path(path).parent} to recompute it" if stage == "data" else
           f"add +rerun={RERUN_NAME.get(stage, stage)} (this stage) or +rerun=true (every stage) to recompute it")
    log.warning("%s: this cached %s result (%s) was computed by code that has changed since (the stage's modules "
                "differ); it is served because its inputs are the same. If the change alters results, %s", path,
                stage, created, how)


#: the ``+rerun`` name of a stage whose manifests carry another name
RERUN_NAME = {"train_unit": "train"}


@functools.cache
def code_version(*parts: str) -> str:
    """Hash of the source of the project's modules ``parts`` (package or module names under ``quantsam``, e.g.
    ``"train", "features", "crosssection"``): what a stage's results depend on besides its inputs. Taken once per
    process, so it names the code this process runs."""
    root = Path(__file__).parent
    items = []
    for part in parts:
        p = root / part
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p.with_suffix(".py")]
        items += [(str(f.relative_to(root)), file_hash(f)) for f in files if f.is_file()]
    return digest(items)


def invalidate(path: str | Path) -> None:
    """Remove a manifest before rewriting the outputs it describes (so a crash in between leaves nothing 'done')."""
    path = Path(path)
    if path.exists():
        path.unlink()
        fsync_dir(path.parent)


class OutputDir:
    """Write a stage's output directory all-or-nothing::

        with OutputDir(target, "factor_test", key) as out:
            write files under out.path
        # here: target/ holds exactly those files plus manifest.json (key, sizes)

    Files go to a temporary sibling directory; on success the manifest is written into it, every file is fsynced
    and the directory is renamed over ``target`` (the old one is moved aside first and deleted after). A crash leaves
    ``target`` as it was, or absent — never half-written. On an exception the temporary directory is removed.
    """

    def __init__(self, target: str | Path, stage: str, key: str, **meta: Any):
        self.target = Path(target)
        self.stage, self.key, self.meta = stage, key, meta
        self.path = self.target.with_name(f".{self.target.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")

    def __enter__(self) -> OutputDir:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.target.parent, self.target.name)  # left by a killed writer
        self.path.mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno in _NO_ROOM and not isinstance(exc, DiskFullError):
                raise disk_full(self.target, exc) from exc  # a full disk while the stage wrote its files
            return False
        try:
            with room_for(self.target):
                files = sorted(p for p in self.path.rglob("*") if p.is_file())
                for f in files:
                    with open(f, "rb+") as fh:
                        os.fsync(fh.fileno())
                write_manifest(self.path / MANIFEST, self.stage, self.key, files, **self.meta)  # sizes + hashes
                swap_into_place(self.path, self.target)
        except DiskFullError:
            shutil.rmtree(self.path, ignore_errors=True)
            raise
        return False


def swap_into_place(tmp: Path, target: Path) -> None:
    """Rename directory ``tmp`` to ``target``, moving an existing ``target`` aside first (deleted afterwards)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{secrets.token_hex(3)}")
        os.rename(target, old)
    os.rename(tmp, target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (signal 0; another user's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: ``taskset``, a container's cpuset), not the machine's:
    what every stage sizes its threads and processes by."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity call on this platform
        return os.cpu_count() or 1


def remove_stale_temporaries(directory: str | Path, name: str = "*") -> int:
    """Delete the temporary files and folders a killed writer left in ``directory`` (``.<name>.tmp-<pid>-<hex>``
    of :func:`atomic_write` / :class:`OutputDir`, whose process is gone; ``name``: only those of that output);
    returns how many."""
    n = 0
    d = Path(directory)
    for stale in d.glob(f".{name}.tmp-*") if d.is_dir() else []:
        if not _pid_alive(stale.name.split(".tmp-")[-1].split("-")[0]):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            n += 1
    return n


def _pid_alive(text: str) -> bool:
    try:
        pid = int(text)
    except ValueError:
        return False
    return pid == os.getpid() or pid_alive(pid)


@contextlib.contextmanager
def locked(target: str | Path, timeout: float = 6 * 3600, wait: bool = True) -> Iterator[bool]:
    """Hold ``<target>.lock`` (parallel jobs asking for the same work wait, then find it done) and yield True; with
    ``wait=False`` yield False at once when another process holds it (nothing is held then)."""
    from filelock import FileLock, Timeout

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target) + ".lock", timeout=timeout if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        if wait:
            raise
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


# ---- artifacts ----------------------------------------------------------------------------------------------------
def save_outputs(directory: str | Path, tables: dict[str, pd.DataFrame], summary: dict, figures: dict) -> list[Path]:
    """Tables as parquet, ``summary.json``, figures as PNG (dpi 110) in ``directory``; returns the paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for name, df in tables.items():
        p = d / f"{name}.parquet"
        df.to_parquet(p)
        out.append(p)
    p = d / "summary.json"
    p.write_text(json.dumps(summary, indent=1, default=_json_default))
    out.append(p)
    for name, fig in figures.items():
        p = d / f"{name}.png"
        fig.savefig(p, dpi=110, bbox_inches="tight")
        out.append(p)
    return out


def close_figures(figs: dict) -> None:
    """Release figures a stage has saved (matplotlib keeps pyplot figures alive until closed)."""
    import matplotlib.pyplot as plt

    for fig in figs.values():
        plt.close(fig)


# ---- safe reads -----------------------------------------------------------------------------------------------------
def read_parquet_bytes(path: str | Path, what: str, fix: str, columns: list[str] | None = None
                       ) -> tuple[pd.DataFrame, str]:
    """(frame, hash of the bytes read) of a parquet file, read once from memory so the hash describes exactly what
    was parsed. Missing, empty, truncated or non-parquet files raise :class:`DataError` naming the file and ``fix``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path}: file not found. Fix: {fix}")
    data = path.read_bytes()
    if not data:
        raise DataError(f"{what} {path}: the file is empty (0 bytes; a crashed write?). Fix: {fix}")
    try:
        df = pd.read_parquet(io.BytesIO(data), columns=columns)
    except Exception as e:  # pyarrow raises several types for truncated or foreign files
        raise DataError(f"{what} {path}: not a readable parquet file ({type(e).__name__}: {str(e)[:120]}). "
                        f"Fix: {fix}") from None
    return df, bytes_hash(data)


def read_parquet(path: str | Path, what: str, fix: str, columns: list[str] | None = None) -> pd.DataFrame:
    return read_parquet_bytes(path, what, fix, columns)[0]


def read_json(path: str | Path, what: str, fix: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path}: file not found. Fix: {fix}")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise DataError(f"{what} {path}: not valid JSON ({e}). Fix: {fix}") from None


# ---- the cached-run ritual ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """A stage that writes a folder of artifacts keyed by its inputs: its name, the version of its numbers (bumped
    when the same inputs give different outputs), and the modules those numbers depend on (their source hash joins
    the manifest — :func:`code_version` —, so a result computed by code edited since is served with a warning naming
    ``+rerun=<stage>``, which recomputes it)."""

    name: str
    version: int
    code: tuple[str, ...]

    def key(self, **parts: Any) -> str:
        return stage_key(self.name, self.version, **parts)

    def code_version(self) -> str:
        return code_version(*self.code)


@dataclass
class Cached:
    """What :func:`run_cached` hands back: the folder, its summary and metrics, whether it was reused, and the
    freshly computed result (None when reused)."""

    out_dir: Path
    summary: dict
    metrics: dict
    skipped: bool
    result: Any = None


def write_folder(target: str | Path, stage: str, key: str, save: Callable[[Path], dict | None], **meta: Any) -> dict:
    """The write step of the ritual: ``save(tmp_dir)`` fills a temporary folder, whose manifest (``key``, ``meta``,
    and what ``save`` returns — e.g. a fingerprint of the files it wrote) is written last before the folder is
    renamed over ``target`` (:class:`OutputDir`). Returns the manifest's extra fields."""
    with OutputDir(target, stage, key, **meta) as out:
        extra = save(out.path)
        extra = extra if isinstance(extra, dict) else {}  # a list of the files written says nothing more
        out.meta.update(extra)
    return extra


def stage_dir(runs_root: str | Path, stage: str, name: str, key: str) -> Path:
    """Where a folder stage's result lives: ``<runs root>/<stage>/<name>-<key>``, beside the other stages' folders
    (not inside the training's): a retrained model never deletes the results of another, and ``name`` (the training
    run's, e.g. ``gsam-all-s0``) keeps the folder readable."""
    return Path(runs_root) / stage / f"{name}-{key}"


def artifact_name(path: str | Path) -> str:
    """The readable name a downstream folder inherits from its input artifact: ``gsam-all-s0`` for
    ``.../signal/gsam-all-s0-<key>/signal.parquet`` (or a training dir's predictions), the file's stem otherwise."""
    p = Path(path)
    if p.stem in ("signal", "predictions") and "-" in p.parent.name:
        return p.parent.name.rsplit("-", 1)[0]
    return p.stem


def rerun_requested(rerun: Any, stage: str) -> bool:
    """Whether ``+rerun=...`` asks to recompute ``stage``: ``true`` (every stage), the stage's name, or a list of
    names (``+rerun=backtest``, ``+rerun=[signal,backtest]``)."""
    if rerun is None or rerun is False:
        return False
    if rerun is True:
        return True
    names = [rerun] if isinstance(rerun, str) else list(rerun)
    return stage in {str(n).strip() for n in names} or "true" in {str(n).strip().lower() for n in names}


def run_cached(stage: Stage, out_dir: str | Path, key: str, compute: Callable[[], Any], *, metric_prefix: str = "",
               tracker: Any = None, run_id: str | None = None, artifact_path: str | None = None,
               meta: dict | None = None, rerun: Any = None) -> Cached:
    """The one cached-run ritual of a folder stage: under the folder's lock, a finished folder with this ``key``
    (its manifest; the stage's code version joins it) is reused — its ``summary.json`` read back, when it has one,
    and its metrics logged only if the run lacks them; otherwise ``compute()`` runs and its result is written
    all-or-nothing (:func:`write_folder`): ``.save(path)`` writes the files (and may return extra manifest fields),
    ``.summary`` (optional) the metrics ``<metric_prefix><name>`` logged with the folder as the run's
    ``artifact_path``, ``.figures`` (optional) are closed after. ``tracker``: anything with ``log_stage(run_id,
    metrics, folder, artifact_path, only_if_missing=...)`` (quantsam.tracking's Tracker), or None to log nothing.
    ``rerun``: the config's ``+rerun`` value — when it names this stage (:func:`rerun_requested`), compute even over a
    finished folder."""
    out_dir = Path(out_dir)
    code = stage.code_version()
    force = rerun_requested(rerun, stage.name)
    with locked(out_dir):
        if force and (out_dir / MANIFEST).exists():
            log.warning("%s: +rerun: recomputing the finished %s result", out_dir, stage.name)
        if not force and is_done(out_dir / MANIFEST, key, code=code):
            f = out_dir / "summary.json"
            summary = read_json(f, f"{stage.name} summary", "delete the folder")["summary"] if f.exists() else {}
            metrics = {f"{metric_prefix}{k}": v for k, v in summary.items()}
            if tracker is not None and metrics:
                tracker.log_stage(run_id, metrics, out_dir, artifact_path, only_if_missing=True)
            return Cached(out_dir, summary, metrics, True)
        res = compute()
        write_folder(out_dir, stage.name, key, res.save, code=code, **(meta or {}))
        if getattr(res, "figures", None):
            close_figures(res.figures)
    summary = getattr(res, "summary", None) or {}
    metrics = {f"{metric_prefix}{k}": v for k, v in summary.items()}
    if tracker is not None and metrics:
        tracker.log_stage(run_id, metrics, out_dir, artifact_path)
    return Cached(out_dir, summary, metrics, False, res)


@dataclass
class InPlace:
    """What :func:`run_in_place` hands back: ``status`` is ``computed``, ``reused`` (done before: ``result`` is what
    ``on_reuse`` returned) or ``busy`` (another process holds the lock and ``wait`` was False)."""

    status: str
    result: Any = None


def run_in_place(stage: str, key: str, compute: Callable[[], tuple[Any, Any]], *, lock: str | Path,
                 manifest: str | Path | None = None, done: Callable[[], bool] | None = None, code: str | None = None,
                 meta: dict | None = None, wait: bool = True, force: bool = False,
                 on_force: Callable[[], None] | None = None, on_reuse: Callable[[], Any] | None = None,
                 clean: tuple[str | Path, ...] = ()) -> InPlace:
    """The cached-run ritual for work whose outputs are written in place, piece by piece, so a crash can resume
    (a training's units, checkpoints and its assembly) rather than swapped in as one folder (:func:`run_cached`).

    Under ``<lock>.lock`` (``wait=False``: give up at once when another process holds it — ``busy``): the work is
    done when ``manifest`` records ``key`` over intact outputs (:func:`is_done`, warning when ``code`` changed) — or,
    without a manifest of its own, when ``done()`` says so — and then ``on_reuse()`` runs, still under the lock.
    Otherwise (or with ``force``, after ``on_force()``) the manifest is removed first, ``compute()`` returns
    ``(outputs, result)``, and the manifest over ``outputs`` is written last — so a crash leaves no "done" state.
    Before computing, the temporaries a killed writer left in the ``clean`` folders are removed."""
    manifest = Path(manifest) if manifest is not None else None
    with locked(lock, wait=wait) as held:
        if not held:
            return InPlace("busy")
        if force:
            if on_force is not None:
                on_force()
        elif (is_done(manifest, key, code=code) if manifest is not None else bool(done and done())):
            return InPlace("reused", on_reuse() if on_reuse is not None else None)
        if manifest is not None:
            invalidate(manifest)
        for folder in clean:
            remove_stale_temporaries(folder)
        outputs, result = compute()
        if manifest is not None:
            write_manifest(manifest, stage, key, outputs, **({"code": code} if code else {}), **(meta or {}))
        return InPlace("computed", result)
