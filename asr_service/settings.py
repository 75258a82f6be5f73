"""Settings of the ASR service (``configs/asr.yaml`` + ``ASR__*`` env vars)."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict

from asr_service.backends import BACKENDS
from common.settings import ServiceSettings, check_queue_reachable


class AsrLimits(BaseModel):
    """Input and queue bounds."""

    model_config = ConfigDict(extra="forbid")

    max_duration_s: float = Field(default=900.0, gt=0)
    """Longest audio accepted (longer: 400)."""
    max_waiting: int = Field(default=8, ge=0)
    """Requests that may wait while the model is busy; more get 429."""
    wait_timeout_s: float = Field(default=600.0, gt=0)
    """A request waiting longer than this for the model gets 503."""


class AsrSettings(ServiceSettings):
    """Everything the ASR service reads from config."""

    service_name: ClassVar[str] = "asr"
    model_config = SettingsConfigDict(env_prefix="ASR__", env_nested_delimiter="__", extra="forbid")

    backend: str
    """Backend name from ``asr_service.backends.BACKENDS`` (``whisper`` or ``sensevoice``)."""
    model_name: str
    """Name reported in responses and ``/v1/models``."""
    aliases: list[str] = Field(default_factory=list)
    """Other model names accepted in requests (e.g. ``whisper-1`` for OpenAI clients)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Backend options, validated by the backend (e.g. ``model_dir``, ``beam_size``)."""
    limits: AsrLimits = AsrLimits()

    @model_validator(mode="after")
    def _check_backend(self) -> Self:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; known: {sorted(BACKENDS)}")
        check_queue_reachable(self.server, self.limits.max_waiting)
        return self
