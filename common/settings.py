"""Typed settings: ``configs/<service>.yaml`` first, then environment variables on top.

Every key can be overridden from the environment as ``<PREFIX>__<GROUP>__<FIELD>``, e.g.
``EMBEDDING__SERVER__API_KEY=secret`` or ``EMBEDDING__BATCHING__MAX_BATCH_SIZE=1``.
``<PREFIX>_CONFIG`` (e.g. ``EMBEDDING_CONFIG=configs/production/embedding.yaml``) picks
another YAML file. Settings are built once by the caller and passed down; nothing is
read at import time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from common.registry import BackendRegistry

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"
CONSOLE_ORIGINS = ("http://127.0.0.1:7200", "http://localhost:7200")
"""Where the voice console (console_service) is served by default."""
_ENV_REFERENCE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


class ConfigError(RuntimeError):
    """A configuration file is missing or invalid."""


class ServerSettings(BaseModel):
    """HTTP settings every service shares (gunicorn reads the process ones)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    """Interface to bind; use 0.0.0.0 to serve other machines."""
    port: int = Field(ge=1, le=65535)
    """TCP port."""
    api_key: SecretStr | None = None
    """Bearer token required on every route except /health, /healthz and /readyz. Unset: open."""
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    """Largest accepted request body; bigger bodies get 413."""
    workers: int = Field(default=1, ge=1, le=16)
    """gunicorn worker processes; each loads its own copy of the models."""
    threads: int = Field(default=16, ge=1, le=256)
    """Request threads per worker (gthread)."""
    timeout: int = Field(default=120, ge=5)
    """Seconds a worker may be silent before gunicorn restarts it."""
    graceful_timeout: int = Field(default=30, ge=1)
    """Seconds in-flight requests get to finish after SIGTERM."""
    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")
    """Log level for the service's own loggers."""
    cors_origins: list[str] = Field(default_factory=lambda: list(CONSOLE_ORIGINS))
    """Browser origins allowed to call this service (CORS); ``"*"`` allows any. Default: the voice console."""


def check_queue_reachable(server: ServerSettings, max_waiting: int) -> None:
    """A model's wait line must be shorter than the request thread pool.

    Otherwise every thread can be waiting for the model, extra requests queue unseen in
    gunicorn's backlog, and the 429 for a full queue can never be sent.

    Raises:
        ValueError: ``server.threads`` is not above ``max_waiting + 1`` (one running, the rest waiting).
    """
    if server.threads <= max_waiting + 1:
        raise ValueError(
            f"server.threads ({server.threads}) must exceed limits.max_waiting + 1 "
            f"({max_waiting + 1}) so that requests past the queue get 429"
        )


class ServiceSettings(BaseSettings):
    """Base of every service's settings. Subclasses set ``service_name``; the env prefix follows from it."""

    service_name: ClassVar[str] = ""
    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="forbid")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.service_name and not cls.model_config.get("env_prefix"):
            # each class has its own model_config dict; pydantic-settings reads it when settings are built
            cls.model_config["env_prefix"] = f"{cls.service_name.upper()}__"

    server: ServerSettings
    cpu_threads: int = Field(default=2, ge=1, le=64)
    """CPU threads the model libraries may use; keep the sum over all services near the core count."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the YAML values, which arrive as init arguments.
        return (env_settings, init_settings)

    @classmethod
    def config_env_var(cls) -> str:
        """Name of the variable that points at another YAML file, e.g. ``EMBEDDING_CONFIG``."""
        return f"{cls.service_name.upper()}_CONFIG"

    @classmethod
    def load(cls, path: str | Path | None = None) -> Self:
        """Build settings from a YAML file (default ``configs/<service>.yaml``) plus env overrides.

        Raises:
            ConfigError: the file is missing, not a mapping, or a value is invalid.
        """
        path = Path(path or os.environ.get(cls.config_env_var()) or CONFIG_DIR / f"{cls.service_name}.yaml")
        try:
            data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config {path} must be a mapping at the top level")
        try:
            return cls(**expand_env(data))
        except ValidationError as exc:
            raise ConfigError(f"invalid config {path} (or environment override):\n{exc}") from exc


class QueueLimits(BaseModel):
    """The bounded wait line in front of a model that serves one request at a time."""

    model_config = ConfigDict(extra="forbid")

    max_waiting: int = Field(default=8, ge=0)
    """Requests that may wait while the model is busy; more get 429."""
    wait_timeout_s: float = Field(default=300.0, gt=0)
    """A request waiting longer than this for the model gets 503."""


class ModelServiceSettings(ServiceSettings):
    """Base of a service that serves one model through one backend of its registry (ASR, LLM, TTS).

    Subclasses set ``backends`` (their ``BACKENDS`` registry) and may narrow ``limits`` to a
    subclass of :class:`QueueLimits`.
    """

    backends: ClassVar[BackendRegistry[Any]]

    backend: str
    """Backend name from the service's ``backends.BACKENDS`` registry."""
    model_name: str
    """Name reported by ``/health``, in responses and by ``/v1/models``."""
    aliases: list[str] = Field(default_factory=list)
    """Other model names accepted in requests (e.g. OpenAI's ``whisper-1`` or ``tts-1``)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The backend's own options, validated by the backend (e.g. ``model_dir``, ``beam_size``)."""
    limits: QueueLimits = QueueLimits()

    @model_validator(mode="after")
    def _check_backend(self) -> Self:
        self.backends.check(self.backend)
        check_queue_reachable(self.server, self.limits.max_waiting)
        return self


def expand_env(value: Any) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a YAML tree.

    Raises:
        ConfigError: a referenced variable is unset and has no default.
    """
    if isinstance(value, dict):
        return {key: expand_env(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise ConfigError(f"config refers to ${{{name}}}, which is not set")
        return default

    return _ENV_REFERENCE.sub(substitute, value)
