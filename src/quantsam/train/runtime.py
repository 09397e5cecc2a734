"""Runtime: device choice, CPU threads, seeds."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch

from quantsam.errors import ConfigError
from quantsam.stageio import usable_cores

log = logging.getLogger(__name__)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError([f"trainer.device={name}: CUDA is not available here. Fix: trainer.device=auto or cpu"])
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError([f"trainer.device={name}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                           f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1}). Fix: one of those, or auto"])
    return dev


def configure_determinism(device: torch.device, deterministic: bool = True) -> None:
    """``trainer.deterministic``. CPU runs are always deterministic (same config + seed => same numbers). On CUDA,
    true: cuDNN's deterministic kernels, no autotuning, torch's deterministic algorithms (cuBLAS needs
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, set here unless already set) — reruns on the same GPU and software give the
    same numbers; false: ``cudnn.benchmark`` autotunes the fastest kernels (runs may differ in the last bits)."""
    if device.type != "cuda" or deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True
        torch.use_deterministic_algorithms(False)


def set_threads(num_threads: int | None = None, n_jobs: int = 1) -> int:
    """torch CPU threads: ``num_threads`` if given, else usable cores / parallel jobs (at least 1)."""
    n = num_threads or max(1, usable_cores() // max(1, n_jobs))
    torch.set_num_threads(n)
    return n


def unit_seed(*parts: int) -> int:
    """A 31-bit seed derived from integers (base seed, window, model, seed index, ...) — stable across runs."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)
