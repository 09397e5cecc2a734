"""Atomic checkpoints: write to a temporary file in the same folder, fsync, then ``os.replace`` (all-or-nothing,
so a ``kill -9`` at any moment leaves either the previous checkpoint or the new one)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save_atomic(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    # our own files, holding optimizer/rng state (not only tensors): weights_only=False is required and safe here
    return torch.load(path, map_location=map_location, weights_only=False)


def write_atomic_bytes(data: bytes, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
