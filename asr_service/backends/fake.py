"""A tiny deterministic ASR backend for fast route and error tests (``backend: fake``); no model, no weights.

It "hears" one word per second of audio, in order from ``words``, one segment per word. It never
replaces the real models in behaviour tests; it lets plumbing (forms, formats, streams, queues,
errors) be tested in milliseconds. Options it does not know are ignored, so any config can switch to
it with ``ASR__BACKEND=fake``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from asr_service.backends import Segment, TranscriptInfo, TranscriptionParams, Word
from common.errors import BadRequest

SAMPLE_RATE = 16000


class FakeAsrOptions(BaseModel):
    """``options:`` of the fake backend."""

    model_config = ConfigDict(extra="ignore")

    words: list[str] = Field(default=["one", "two", "three", "four", "five", "six", "seven", "eight"], min_length=1)
    segment_delay_s: float = Field(default=0.0, ge=0)
    """Pause before each segment (to test disconnects and queues)."""
    fail_after: int | None = Field(default=None, ge=0)
    """Raise after this many segments (to test a stream that fails midway)."""
    languages: list[str] = ["en", "zh"]
    """Languages it accepts; others get 400, as a real backend answers for a language it lacks."""
    labels: dict[str, str] = {}
    """Labels put on every segment (what e.g. SenseVoice reports as emotion and event)."""


class FakeAsrBackend:
    """One word per second of audio; language is the requested one or ``en``."""

    supports_hotwords = True

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        self.options = FakeAsrOptions.model_validate(options)

    def transcribe(self, samples: np.ndarray, params: TranscriptionParams) -> tuple[TranscriptInfo, Iterator[Segment]]:
        """Segments of one word each, one per started second of audio.

        Raises:
            BadRequest: a language not in ``languages``.
        """
        if params.language is not None and params.language not in self.options.languages:
            raise BadRequest(
                f"language {params.language!r} is not supported; use one of {self.options.languages}", param="language"
            )
        duration = len(samples) / SAMPLE_RATE
        return TranscriptInfo(params.language or "en", duration), self._segments(duration, params)

    def _segments(self, duration: float, params: TranscriptionParams) -> Iterator[Segment]:
        words = self.options.words
        for index in range(max(1, int(np.ceil(duration)))):
            if self.options.fail_after is not None and index >= self.options.fail_after:
                raise RuntimeError("fake backend failure")
            time.sleep(self.options.segment_delay_s)
            start, end = float(index), min(float(index + 1), duration)
            word = words[index % len(words)]
            timed = [Word(start, end, f" {word}", 1.0)] if params.word_timestamps else None
            yield Segment(index, start, end, f" {word}", timed, {"avg_logprob": -0.1}, dict(self.options.labels))

    def close(self) -> None:
        """Nothing to free."""
