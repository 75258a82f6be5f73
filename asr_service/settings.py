"""Settings of the ASR service (``configs/asr.yaml`` + ``ASR__*`` env vars)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from asr_service.backends import BACKENDS
from common.settings import ModelServiceSettings, QueueLimits


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
