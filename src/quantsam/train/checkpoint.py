"""Checkpoints and weights: atomic writes, and loading with ``torch.load(weights_only=True)`` only.

Everything quantsam stores in ``.pt`` files is tensors and plain Python values (optimizer moments and SAM buffers,
early-stopping state, RNG state as a byte tensor, histories as floats), so it loads without unpickling arbitrary
objects. Work directories are shared and copied between machines: a file that needs more than that (a planted
pickle payload, a foreign file) is refused with a clear error instead of running its code. A resume checkpoint that
cannot be read (truncated by a full disk or a copy, planted, foreign) is set aside — renamed
``<tag>.pt.damaged-<time>`` and logged — and its unit trains again from its first epoch (:func:`load_or_set_aside`).
"""

from __future__ import annotations

import logging
import pickle
import time
from pathlib import Path
from typing import Any

import torch

from quantsam import stageio
from quantsam.errors import DataError

log = logging.getLogger(__name__)


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` all-or-nothing (temporary file, fsync, rename): a ``kill -9`` leaves the old file or the new."""
    stageio.atomic_write(path, lambda p: torch.save(obj, p))


def load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a quantsam ``.pt`` file safely (``weights_only=True``); anything else raises :class:`DataError`."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise  # the file's place, not its bytes: the OS error names it
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, OSError) as e:
        # a truncated zip archive raises OSError [Errno 22] from torch's reader
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: refused to load: not a plain tensor file that quantsam wrote (torch.load with "
                        f"weights_only=True failed: {first}). It may have been planted or corrupted. Fix: delete it "
                        "(quantsam re-creates checkpoints and weights by training again)") from None


def set_aside(path: str | Path) -> Path:
    """Rename a damaged file to ``<name>.damaged-<YYYYmmdd-HHMMSS>`` beside it (kept for a look, never read again)."""
    path = Path(path)
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    path.rename(aside)
    return aside


def load_or_set_aside(path: str | Path, map_location: str | torch.device = "cpu") -> Any | None:
    """A resume checkpoint, or None when there is none — or when it cannot be loaded (:func:`load` refuses it): then
    it is set aside (:func:`set_aside`, logged with both paths) so the unit trains again from its first epoch instead
    of every rerun failing on the same file."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return load(path, map_location)
    except DataError as e:
        aside = set_aside(path)
        log.warning("%s — set aside as %s; this unit trains again from its first epoch (delete the file once looked "
                    "at)", str(e).split(" Fix:")[0], aside)
        return None
