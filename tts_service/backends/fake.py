"""A tiny deterministic TTS backend for fast route and error tests (``backend: fake``); no model, no weights.

Each clause becomes a tone of 0.05 s per letter or digit (divided by ``speed``), at the preset's
pitch. It never replaces the real voices in behaviour tests. Options it does not know are ignored,
so any config can switch to it with ``TTS__BACKEND=fake``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from common.audio import Audio
from tts_service.backends import PreparedVoice, SynthesisParams, VoicePreset


class FakeTtsOptions(BaseModel):
    """``options:`` of the fake backend."""

    model_config = ConfigDict(extra="ignore")

    clause_delay_s: float = Field(default=0.0, ge=0)
    """Pause before each clause (to test disconnects and queues)."""
    fail_after: int | None = Field(default=None, ge=0)
    """Raise after this many clauses (to test a stream that fails midway)."""


class FakeVoice(PreparedVoice):
    """A pitch in Hz."""

    def __init__(self, pitch_hz: float, from_reference: bool) -> None:
        self.pitch_hz = pitch_hz
        self.from_reference = from_reference

    def describe(self) -> dict[str, Any]:
        """The pitch, as the offline backend reports a measured reference."""
        return {"prompt_pitch_hz": self.pitch_hz, "prompt_syllables_per_s": 4.0} if self.from_reference else {}


class FakeTtsBackend:
    """Tones instead of speech, at 16 kHz."""

    sample_rate = 16000

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        self.options = FakeTtsOptions.model_validate(options)
        self._clauses = 0

    def prepare(self, preset: VoicePreset, reference: Audio | None) -> PreparedVoice:
        """The preset's pitch (200 Hz times its multiplier), or 150 Hz for any reference recording."""
        return FakeVoice(150.0, True) if reference is not None else FakeVoice(200.0 * preset.pitch, False)

    def synthesize(self, text: str, voice: PreparedVoice, params: SynthesisParams) -> np.ndarray:
        """A tone as long as the clause has letters and digits."""
        self._clauses += 1
        if self.options.fail_after is not None and self._clauses > self.options.fail_after:
            raise RuntimeError("fake backend failure")
        time.sleep(self.options.clause_delay_s)
        letters = sum(char.isalnum() for char in text)
        seconds = 0.05 * letters / params.speed
        times = np.arange(int(seconds * self.sample_rate), dtype=np.float32) / self.sample_rate
        pitch = voice.pitch_hz if isinstance(voice, FakeVoice) else 200.0
        return (0.3 * np.sin(2 * np.pi * pitch * times)).astype(np.float32)

    def close(self) -> None:
        """Nothing to free."""
