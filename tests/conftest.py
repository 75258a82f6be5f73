"""Shared fixtures: clean env, real models loaded once per session, real gunicorn services.

Each service ``X`` gets four fixtures: ``X_settings`` (the shipped offline config, without env
overrides), ``X_engine`` (its real models, loaded once per session), ``X_client`` (a Flask test client
on a fresh app around that engine) and ``X_server`` (the service under real gunicorn, started by
scripts/services.py on a free port, once per session).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from asr_service.app import create_app as create_asr_app
from asr_service.engine import AsrEngine
from asr_service.settings import AsrSettings
from common.lifecycle import ModelEngine
from common.settings import ServiceSettings
from embedding_service.app import create_app as create_embedding_app
from embedding_service.engine import EmbeddingEngine
from embedding_service.settings import EmbeddingSettings
from llm_service.app import create_app as create_llm_app
from llm_service.engine import LlmEngine
from llm_service.settings import LlmSettings
from tests.servers import RunningService, launch
from tts_service.app import create_app as create_tts_app
from tts_service.engine import TtsEngine
from tts_service.settings import TtsSettings

SUITE_ENV_PREFIXES = ("EMBEDDING", "ASR", "LLM", "TTS", "SUITE_")


def _suite_env_vars() -> list[str]:
    return [k for k in os.environ if k.startswith(SUITE_ENV_PREFIXES)]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees suite settings from the developer's shell."""
    for name in _suite_env_vars():
        monkeypatch.delenv(name)


def _shipped(settings_class: type[ServiceSettings]) -> ServiceSettings:
    saved = {k: os.environ.pop(k) for k in _suite_env_vars()}
    try:
        return settings_class.load()
    finally:
        os.environ.update(saved)


def service_fixtures(
    name: str,
    settings_class: type[ServiceSettings],
    engine_class: Callable[[Any], ModelEngine],
    create_app: Callable[..., Any],
) -> tuple[Any, Any, Any, Any]:
    """The four fixtures of service ``name`` (see the module docstring)."""

    @pytest.fixture(scope="session", name=f"{name}_settings")
    def settings() -> ServiceSettings:
        return _shipped(settings_class)

    @pytest.fixture(scope="session", name=f"{name}_engine")
    def engine(request: pytest.FixtureRequest) -> Iterator[ModelEngine]:
        loaded = engine_class(request.getfixturevalue(f"{name}_settings"))
        loaded.start(background=False)
        assert loaded.status == "ready", loaded.load_error
        yield loaded
        loaded.close()

    @pytest.fixture(name=f"{name}_client")
    def client(request: pytest.FixtureRequest) -> Any:
        app = create_app(request.getfixturevalue(f"{name}_settings"), engine=request.getfixturevalue(f"{name}_engine"))
        return app.test_client()

    @pytest.fixture(scope="session", name=f"{name}_server")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
        with launch(name, tmp_path_factory.mktemp(f"{name}-run")) as service:
            yield service

    return settings, engine, client, server


embedding_settings, embedding_engine, embedding_client, embedding_server = service_fixtures(
    "embedding", EmbeddingSettings, EmbeddingEngine, create_embedding_app
)
asr_settings, asr_engine, asr_client, asr_server = service_fixtures("asr", AsrSettings, AsrEngine, create_asr_app)
llm_settings, llm_engine, llm_client, llm_server = service_fixtures("llm", LlmSettings, LlmEngine, create_llm_app)
tts_settings, tts_engine, tts_client, tts_server = service_fixtures("tts", TtsSettings, TtsEngine, create_tts_app)
