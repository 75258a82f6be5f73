"""The suite's services: the one list of them. Scripts, gunicorn, tests and benchmarks derive from it.

A new service is its own package (``<name>_service/`` with ``settings.py``, ``engine.py``, ``app.py``
and ``wsgi.py``), a ``configs/<name>.yaml`` and one line in :data:`SERVICES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.registry import import_object
from common.settings import ServiceSettings


@dataclass(frozen=True)
class Service:
    """Where one service's pieces live, by the package layout every service follows."""

    name: str
    """Short name: config file, env prefix (``ASR__...``, ``ASR_PORT``), pid and log file names."""
    package: str
    """Python package, e.g. ``asr_service``."""
    settings: str
    """Settings class in ``<package>.settings``."""
    engine: str
    """Engine class in ``<package>.engine``."""

    @property
    def app(self) -> str:
        """``module:attribute`` of the WSGI app for gunicorn."""
        return f"{self.package}.wsgi:app"

    @property
    def env_prefix(self) -> str:
        """Start of every environment variable that configures it, e.g. ``ASR``."""
        return self.name.upper()

    @property
    def port_env(self) -> str:
        """Variable the start scripts read for the port, e.g. ``EMBEDDING_PORT``."""
        return f"{self.env_prefix}_PORT"

    def settings_class(self) -> type[ServiceSettings]:
        """Import and return the settings class."""
        return import_object(f"{self.package}.settings:{self.settings}")

    def engine_class(self) -> Any:
        """Import and return the engine class."""
        return import_object(f"{self.package}.engine:{self.engine}")

    def create_app(self) -> Any:
        """Import and return the app factory, ``create_app(settings=None, engine=None)``."""
        return import_object(f"{self.package}.app:create_app")


SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service("embedding", "embedding_service", "EmbeddingSettings", "EmbeddingEngine"),
        Service("asr", "asr_service", "AsrSettings", "AsrEngine"),
        Service("llm", "llm_service", "LlmSettings", "LlmEngine"),
        Service("tts", "tts_service", "TtsSettings", "TtsEngine"),
        Service("console", "console_service", "ConsoleSettings", "ConsoleEngine"),
    )
}

SUITE_ENV_PREFIXES = (*(service.env_prefix for service in SERVICES.values()), "SUITE_")
"""Every environment variable the suite reads starts with one of these (tests clear them)."""
