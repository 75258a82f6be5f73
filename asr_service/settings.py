"""Settings of the ASR service (``configs/asr.yaml`` + ``ASR__*`` env vars)."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from asr_service.backends import BACKENDS
from asr_service.live_limits import LiveLimits
from common.settings import ModelServiceSettings, QueueLimits, check_queue_reachable


class AsrLimits(QueueLimits):
    """Input and queue bounds."""

    max_duration_s: float = Field(default=900.0, gt=0)
    """Longest audio accepted (longer: 400)."""
    wait_timeout_s: float = Field(default=600.0, gt=0)
    """A request waiting longer than this for the model gets 503."""


class AsrSettings(ModelServiceSettings):
    """Everything the ASR service reads from config."""

    service_name: ClassVar[str] = "asr"
    backends = BACKENDS

    limits: AsrLimits = AsrLimits()
    live: LiveLimits = LiveLimits()
    """Live transcription over WebSocket (``/asr/live``, ``/v1/realtime``)."""

    @model_validator(mode="after")
    def _check_live_threads(self) -> Self:
        # every live session holds a request thread for its whole length
        check_queue_reachable(self.server, self.limits.max_waiting + self.live.max_sessions)
        return self
