"""rho schedules.

GSAM (Zhuang et al., ICLR 2022, Alg. 1; official ``ProportionScheduler`` in github.com/juntang-zhuang/GSAM) lets rho
follow the learning rate: ``(rho_t - rho_min) / (rho_max - rho_min) = (lr_t - lr_min) / (lr_max - lr_min)`` with
``lr_max`` the initial lr and ``lr_min = 0`` (as in the official training scripts). We evaluate it from the *current*
lr at each step (no scheduler object to keep in sync), which equals the official call order
(``lr_scheduler.step()`` then ``update_rho_t()``).
"""

from __future__ import annotations


def proportional_rho(lr: float, lr_max: float, rho_max: float, rho_min: float, lr_min: float = 0.0) -> float:
    """rho proportional to the lr between (lr_min, rho_min) and (lr_max, rho_max)."""
    if lr_max <= lr_min:
        return rho_max
    return rho_min + (rho_max - rho_min) * (lr - lr_min) / (lr_max - lr_min)
