"""Factor models: :class:`GRUFactor`; the dual setup trains one per frequency (daily, weekly) separately."""

from quantsam.models.gru import GRUFactor, build_model

FREQUENCIES = ("daily", "weekly")

__all__ = ["FREQUENCIES", "GRUFactor", "build_model"]
