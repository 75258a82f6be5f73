"""Settings of the LLM service (``configs/llm.yaml`` + ``LLM__*`` env vars)."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings, check_queue_reachable
from llm_service.backends import BACKENDS


class GenerationDefaults(BaseModel):
    """Used when a request leaves a knob out."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(default=512, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    """None: the backend's / upstream's own default."""
    top_p: float | None = Field(default=None, gt=0, le=1)


class LlmLimits(BaseModel):
    """Input and queue bounds."""

    model_config = ConfigDict(extra="forbid")

    max_messages: int = Field(default=512, ge=1)
    max_input_chars: int = Field(default=200_000, ge=1)
    """Total characters over all messages."""
    max_tokens: int = Field(default=4096, ge=1)
    """Largest max_tokens a request may ask for."""
    max_waiting: int = Field(default=8, ge=0)
    """Requests that may wait while the local model is busy; more get 429."""
    wait_timeout_s: float = Field(default=300.0, gt=0)


class LlmSettings(ServiceSettings):
    """Everything the LLM service reads from config."""

    service_name: ClassVar[str] = "llm"
    model_config = SettingsConfigDict(env_prefix="LLM__", env_nested_delimiter="__", extra="forbid")

    backend: str
    """``llama_server`` (local GGUF on llama.cpp's server, a supervised child) or ``openai_upstream`` (any
    OpenAI-compatible server)."""
    model_name: str
    """Name reported by /health, responses and /v1/models."""
    aliases: list[str] = Field(default_factory=list)
    """Other model names accepted in requests."""
    pass_through_models: bool = False
    """Upstream only: send any requested model name on to the upstream instead of answering 404."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Backend options, validated by the backend."""
    defaults: GenerationDefaults = GenerationDefaults()
    limits: LlmLimits = LlmLimits()

    @model_validator(mode="after")
    def _check_backend(self) -> Self:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; known: {sorted(BACKENDS)}")
        check_queue_reachable(self.server, self.limits.max_waiting)
        return self
