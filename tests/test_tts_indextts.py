"""The IndexTTS production backend, as far as it can be tested without its weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.audio import Audio
from common.errors import BadRequest
from tts_service.backends import SynthesisParams, VoicePreset
from tts_service.backends.indextts import (
    IndexTtsBackend,
    ReferenceVoice,
    generation_kwargs,
    to_float_audio,
)
from tts_service.engine import TtsEngine
from tts_service.settings import TtsSettings


def test_production_config_loads_with_local_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TTS_MODEL_DIR", str(tmp_path / "IndexTTS"))
    settings = TtsSettings.load("configs/production/tts.yaml")
    assert settings.backend == "indextts" and settings.options["model_dir"] == str(tmp_path / "IndexTTS")


def test_missing_model_dir_fails_fast_with_a_clear_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist; download it once"):
        IndexTtsBackend({"model_dir": str(tmp_path / "nowhere")}, 1)
    with pytest.raises(FileNotFoundError, match=r"no config\.yaml"):
        IndexTtsBackend({"model_dir": str(tmp_path)}, 1)
    monkeypatch.setenv("TTS_MODEL_DIR", str(tmp_path / "nowhere"))
    engine = TtsEngine(TtsSettings.load("configs/production/tts.yaml"))
    engine.start(background=False)
    assert engine.status == "failed" and "does not exist" in (engine.load_error or "")


def test_missing_package_is_reported(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("{}")
    with pytest.raises(RuntimeError, match="needs IndexTTS installed"):
        IndexTtsBackend({"model_dir": str(tmp_path)}, 1)


def test_parameters_map_to_generation_kwargs() -> None:
    assert generation_kwargs(SynthesisParams(), 30) == {"do_sample": True, "top_k": 30}
    assert generation_kwargs(SynthesisParams(temperature=0.6, top_p=0.9, top_k=5), 30) == {
        "do_sample": True,
        "top_k": 5,
        "temperature": 0.6,
        "top_p": 0.9,
    }


def test_output_conversion() -> None:
    ints = np.array([[16384], [-32768]], dtype=np.int16)
    assert to_float_audio((24000, ints)).tolist() == [0.5, -1.0]
    assert to_float_audio(np.zeros((1, 3), np.float32)).shape == (3,)


def test_reference_voices() -> None:
    backend = IndexTtsBackend.__new__(IndexTtsBackend)  # no model needed for prepare()
    uploaded = backend.prepare(VoicePreset("s", "d", "zh"), Audio(np.zeros(16000, np.float32), 16000))
    assert isinstance(uploaded, ReferenceVoice) and uploaded.path.exists() and uploaded.path.read_bytes()[:4] == b"RIFF"
    uploaded.close()
    uploaded.close()
    assert not uploaded.path.exists()
    with pytest.raises(BadRequest, match="no reference_audio"):
        backend.prepare(VoicePreset("s", "d", "zh"), None)
    preset_voice = backend.prepare(VoicePreset("s", "d", "zh", reference_audio=Path(__file__)), None)
    preset_voice.close()
    assert Path(__file__).exists()
