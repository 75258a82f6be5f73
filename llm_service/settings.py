"""Settings of the LLM service (``configs/llm.yaml`` + ``LLM__*`` env vars)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from common.settings import ModelServiceSettings, QueueLimits
from llm_service.backends import BACKENDS


class GenerationDefaults(BaseModel):
    """Used when a request leaves a knob out."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(default=512, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    """None: the backend's / upstream's own default."""
    top_p: float | None = Field(default=None, gt=0, le=1)


class LlmLimits(QueueLimits):
    """Input and queue bounds (the wait line applies to a local model only)."""

    max_messages: int = Field(default=512, ge=1)
    """Most messages in one request."""
    max_input_chars: int = Field(default=200_000, ge=1)
    """Total characters over all messages."""
    max_tokens: int = Field(default=4096, ge=1)
    """Largest max_tokens a request may ask for."""


class LlmSettings(ModelServiceSettings):
    """Everything the LLM service reads from config."""

    service_name: ClassVar[str] = "llm"
    backends = BACKENDS

    pass_through_models: bool = False
    """Upstream only: send any requested model name on to the upstream instead of answering 404."""
    defaults: GenerationDefaults = GenerationDefaults()
    limits: LlmLimits = LlmLimits()
