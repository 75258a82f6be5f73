"""ASR backends: one file per model family behind :class:`AsrBackend`.

Adding a backend is one module plus one line in :data:`BACKENDS`; routes don't change. Each
backend validates its own ``options`` (from the config's ``options:`` block).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from common.registry import BackendRegistry

BACKENDS: BackendRegistry[AsrBackend] = BackendRegistry(
    __name__, whisper="whisper:WhisperBackend", sensevoice="sensevoice:SenseVoiceBackend", fake="fake:FakeAsrBackend"
)


@dataclass(frozen=True)
class TranscriptionParams:
    """What a caller may ask of a transcription."""

    language: str | None = None
    """ISO code such as ``en`` or ``zh``; None detects it."""
    prompt: str | None = None
    """Text that conditions the decoder (names, spelling, style)."""
    hotwords: str | None = None
    """Words to favour, where the backend supports it."""
    temperature: float | None = None
    """Sampling temperature; None uses the backend's fallback schedule."""
    word_timestamps: bool = False
    utterance: bool = False
    """The samples are one short utterance already cut at pauses (live transcription): the backend may
    skip its own voice detection and decode it as a whole, in a shorter window where it can."""
    preview: bool = False
    """A partial transcript the next decode replaces: rather than take a slow path on audio it cannot decode
    cleanly (Whisper: a text that loops), the backend may return no text."""
    said_before: str = ""
    """For an utterance's later part: the text of its beginning, which the backend may use as context."""


@dataclass(frozen=True)
class Word:
    """One word with its time span."""

    start: float
    end: float
    word: str
    probability: float | None = None


@dataclass(frozen=True)
class Segment:
    """A decoded stretch of speech."""

    id: int
    start: float
    end: float
    text: str
    words: list[Word] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Decoder facts for OpenAI's ``verbose_json`` (``avg_logprob``, ``no_speech_prob``, ...), where known."""
    labels: dict[str, str | None] = field(default_factory=dict)
    """What the backend heard besides words, by kind (e.g. ``emotion``, ``event``); ``/asr`` reports them."""


@dataclass(frozen=True)
class TranscriptInfo:
    """Known before the first segment."""

    language: str | None
    duration: float


class AsrBackend(Protocol):
    """What the engine needs from a model family. One call at a time."""

    supports_hotwords: bool

    def transcribe(self, samples: np.ndarray, params: TranscriptionParams) -> tuple[TranscriptInfo, Iterator[Segment]]:
        """Start decoding 16 kHz mono float32 ``samples``; segments come lazily, in order."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...
