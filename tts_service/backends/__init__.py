"""TTS backends: one module per model family behind :class:`TtsBackend`.

Adding a backend is one module plus one line in :data:`BACKENDS`; routes don't change. The
engine splits text into clauses, so a backend only turns one clause into audio; each backend
validates its own ``options`` (from the config's ``options:`` block).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from common.audio import Audio
from common.registry import BackendRegistry

BACKENDS: BackendRegistry[TtsBackend] = BackendRegistry(
    __name__, offline="offline:OfflineBackend", indextts="indextts:IndexTtsBackend", fake="fake:FakeTtsBackend"
)


@dataclass(frozen=True)
class VoicePreset:
    """A named style from ``tts_service/voices/<name>.yaml``."""

    name: str
    description: str
    language: str
    tempo: float = 1.0
    """Speaking-rate multiplier (>1 faster)."""
    pitch: float = 1.0
    """Median-pitch multiplier."""
    volume: float = 1.0
    reference_audio: Path | None = None
    """Recording a cloning backend imitates; the offline engine uses tempo/pitch/volume instead."""


@dataclass(frozen=True)
class SynthesisParams:
    """Per-request knobs. None means the backend's default."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    speed: float = 1.0
    """Extra speaking-rate multiplier (OpenAI's ``speed``)."""


class PreparedVoice:
    """What a backend derived from a preset or an uploaded reference; closed after the request."""

    def describe(self) -> dict[str, Any]:
        """Facts worth reporting to the caller (e.g. the pitch measured in a reference)."""
        return {}

    def close(self) -> None:
        """Release whatever the voice holds (temp files, cached conditioning); idempotent."""


class TtsBackend(Protocol):
    """What the engine needs from a model family. One call at a time."""

    sample_rate: int
    """Rate of the float32 mono audio :meth:`synthesize` returns."""

    def prepare(self, preset: VoicePreset, reference: Audio | None) -> PreparedVoice:
        """Turn a style, or an uploaded reference recording (which wins), into a voice.

        Raises:
            BadRequest: the reference is unusable (e.g. no voiced speech to measure).
        """
        ...

    def synthesize(self, text: str, voice: PreparedVoice, params: SynthesisParams) -> np.ndarray:
        """Speech for one clause; an empty array if nothing in it can be spoken."""
        ...

    def close(self) -> None:
        """Free the models."""
        ...
