"""Checkpoints and weights: atomic writes, and loading with ``torch.load(weights_only=True)`` only.

Everything quantsam stores in ``.pt`` files is tensors and plain Python values (optimizer moments and SAM buffers,
early-stopping state, RNG state as a byte tensor, histories as floats), so it loads without unpickling arbitrary
objects. Work directories are shared and copied between machines: a file that needs more than that (a planted
pickle payload, a foreign file) is refused with a clear error instead of running its code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from quantsam import stageio
from quantsam.errors import DataError


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` all-or-nothing (temporary file, fsync, rename): a ``kill -9`` leaves the old file or the new."""
    stageio.atomic_write(path, lambda p: torch.save(obj, p))


def load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a quantsam ``.pt`` file safely (``weights_only=True``); anything else raises :class:`DataError`."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: refused to load: not a plain tensor file that quantsam wrote (torch.load with "
                        f"weights_only=True failed: {first}). It may have been planted or corrupted. Fix: delete it "
                        "(quantsam re-creates checkpoints and weights by training again)") from None
