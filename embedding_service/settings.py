"""Settings of the embedding service (``configs/embedding.yaml`` + ``EMBEDDING__*`` env vars)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.settings import ServiceSettings
from embedding_service.backends import BACKENDS, EmbeddingOptions

InputType = Literal["query", "document"]


class EmbeddingModelSettings(EmbeddingOptions):
    """One served model: its backend, the names it answers to, and the backend's options."""

    backend: str
    """Backend name from ``embedding_service.backends.BACKENDS``."""
    aliases: list[str] = Field(default_factory=list)
    """Other names this model answers to (e.g. the production model's name on the offline default)."""
    default_input_type: InputType = "query"
    """How texts are embedded when a request does not say (``/similarity`` and plain embedding routes)."""

    def backend_options(self) -> dict[str, Any]:
        """The keys the backend reads (:class:`EmbeddingOptions`), as the ``options`` it is built with."""
        return self.model_dump(include=set(EmbeddingOptions.model_fields))


class BatchingSettings(BaseModel):
    """Micro-batching of concurrent requests into one forward pass per model."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(default=32, ge=1, le=1024)
    """Most texts in one forward pass; 1 disables batching."""
    max_wait_ms: float = Field(default=2.0, ge=0, le=1000)
    """How long the oldest queued text may wait for others to join its batch."""
    max_queue: int = Field(default=2048, ge=1)
    """Texts waiting per model before new requests get 429."""
    request_timeout_s: float = Field(default=60.0, gt=0)
    """A request waiting longer than this for its vectors gets 503."""
    workers: int = Field(default=2, ge=1, le=16)
    """Batches one model runs at once, for backends that can (the ONNX ones), each on ``cpu_threads /
    workers`` threads; other backends run one batch at a time on all ``cpu_threads``."""


class LimitSettings(BaseModel):
    """Per-request input limits."""

    model_config = ConfigDict(extra="forbid")

    max_texts: int = Field(default=256, ge=1)
    """Most texts in one request."""
    max_chars: int = Field(default=8192, ge=1)
    """Longest text in characters."""
    on_too_long: Literal["truncate", "error"] = "truncate"
    """What to do with a text over ``max_chars``: cut it, or answer 400."""


class EmbeddingSettings(ServiceSettings):
    """Everything the embedding service reads from config."""

    service_name: ClassVar[str] = "embedding"

    models: dict[str, EmbeddingModelSettings] = Field(min_length=1)
    """Served models by name."""
    default_model: str
    """Model used when a request names none."""
    batching: BatchingSettings = BatchingSettings()
    limits: LimitSettings = LimitSettings()

    @model_validator(mode="after")
    def _check_names(self) -> Self:
        for spec in self.models.values():
            BACKENDS.check(spec.backend)
        names = list(self.models)
        for spec in self.models.values():
            names.extend(spec.aliases)
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"model names/aliases used twice: {sorted(duplicates)}")
        if self.default_model not in names:
            raise ValueError(f"default_model {self.default_model!r} is not a served model or alias")
        return self
