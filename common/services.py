"""The suite's services: where each one's WSGI app and settings class live (one place for scripts and gunicorn)."""

from __future__ import annotations

from dataclasses import dataclass

from common.registry import import_object
from common.settings import ServiceSettings


@dataclass(frozen=True)
class Service:
    """How to launch one service."""

    name: str
    app: str
    """``module:attribute`` of the WSGI app for gunicorn."""
    settings: str
    """``module:Class`` of its settings."""

    @property
    def port_env(self) -> str:
        """Variable the start scripts read for the port, e.g. ``EMBEDDING_PORT``."""
        return f"{self.name.upper()}_PORT"

    def settings_class(self) -> type[ServiceSettings]:
        """Import and return the settings class."""
        return import_object(self.settings)


SERVICES: dict[str, Service] = {
    "embedding": Service("embedding", "embedding_service.wsgi:app", "embedding_service.settings:EmbeddingSettings"),
    "asr": Service("asr", "asr_service.wsgi:app", "asr_service.settings:AsrSettings"),
    "llm": Service("llm", "llm_service.wsgi:app", "llm_service.settings:LlmSettings"),
    "tts": Service("tts", "tts_service.wsgi:app", "tts_service.settings:TtsSettings"),
}
