"""Factor models: :class:`GRUFactor`; the dual setup trains one per frequency (daily, weekly) separately."""

from quantsam.models.gru import GRUFactor, build_model

__all__ = ["GRUFactor", "build_model"]
