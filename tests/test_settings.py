"""Typed settings: YAML, env overrides, ${VAR} expansion, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.settings import ConfigError
from embedding_service.settings import EmbeddingSettings
from harness.launch import write_config


def test_shipped_config_loads(embedding_settings: EmbeddingSettings) -> None:
    assert embedding_settings.server.port == 7202
    assert embedding_settings.server.api_key is None
    assert set(embedding_settings.models) == {"multilingual-e5-small", "all-MiniLM-L6-v2"}
    assert "Qwen3-Embedding-4B" in embedding_settings.models["multilingual-e5-small"].aliases


def test_env_overrides_nested_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING__SERVER__PORT", "7999")
    monkeypatch.setenv("EMBEDDING__SERVER__API_KEY", "s3cret")
    monkeypatch.setenv("EMBEDDING__BATCHING__MAX_BATCH_SIZE", "1")
    settings = EmbeddingSettings.load()
    assert settings.server.port == 7999
    assert settings.server.api_key is not None and settings.server.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.batching.max_batch_size == 1
    assert settings.batching.max_queue == 2048  # siblings keep their YAML values


def test_config_env_var_picks_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config("embedding", tmp_path / "e.yaml", {"server": {"port": 7333}})
    monkeypatch.setenv("EMBEDDING_CONFIG", str(path))
    assert EmbeddingSettings.load().server.port == 7333


def test_variable_references_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config("embedding", tmp_path / "e.yaml", {"server": {"host": "${TEST_HOST:-127.0.0.9}"}})
    assert EmbeddingSettings.load(path).server.host == "127.0.0.9"
    monkeypatch.setenv("TEST_HOST", "0.0.0.0")
    assert EmbeddingSettings.load(path).server.host == "0.0.0.0"
    write_config("embedding", path, {"server": {"host": "${TEST_UNSET_VARIABLE}"}})
    with pytest.raises(ConfigError, match="TEST_UNSET_VARIABLE"):
        EmbeddingSettings.load(path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"default_model": "nope"}, "default_model"),
        ({"models": {"x": {"backend": "magic"}}}, "unknown backend"),
        ({"models": {"all-MiniLM-L6-v2": {"aliases": ["multilingual-e5-small"]}}}, "used twice"),
        ({"server": {"port": 0}}, "port"),
        ({"batching": {"max_batch_size": 0}}, "max_batch_size"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_config_is_a_clear_error(tmp_path: Path, overrides: dict, message: str) -> None:
    path = write_config("embedding", tmp_path / "e.yaml", overrides)
    with pytest.raises(ConfigError, match=message):
        EmbeddingSettings.load(path)


def test_missing_or_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        EmbeddingSettings.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        EmbeddingSettings.load(bad)


def test_production_config_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_MODEL_DIR", "/srv/models/qwen3-emb")
    settings = EmbeddingSettings.load(Path("configs/production/embedding.yaml"))
    spec = settings.models["Qwen3-Embedding-4B"]
    assert spec.path == "/srv/models/qwen3-emb"
    assert spec.query_prompt.startswith("Instruct:")
    assert spec.default_input_type == "document"


def test_queue_must_be_shorter_than_the_thread_pool(tmp_path: Path) -> None:
    from asr_service.settings import AsrSettings

    path = write_config("asr", tmp_path / "asr.yaml", {"server": {"threads": 8}, "limits": {"max_waiting": 8}})
    with pytest.raises(ConfigError, match="get 429"):
        AsrSettings.load(path)
