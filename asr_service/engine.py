"""The ASR engine: decode uploads, run the backend one file at a time, stream segments. No HTTP here.

>>> engine = AsrEngine(AsrSettings.load()); engine.start(background=False)
>>> engine.transcribe(open("speech.wav", "rb").read()).text
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from asr_service.backends import AsrBackend, Segment, TranscriptInfo, TranscriptionParams
from asr_service.settings import AsrSettings
from common.audio import Audio, decode_audio
from common.errors import BadRequest
from common.lifecycle import SingleModelEngine
from common.model_slot import LeasedStream

log = logging.getLogger("suite.asr")
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Transcript:
    """A finished transcription."""

    model: str
    text: str
    language: str | None
    duration: float
    segments: list[Segment]


class TranscriptStream:
    """Segments as they are decoded; iterate once. Closing it (or the client leaving) stops decoding."""

    def __init__(self, model: str, info: TranscriptInfo, segments: LeasedStream[Segment]) -> None:
        self.model = model
        self.language = info.language
        self.duration = info.duration
        self._segments = segments

    def __iter__(self) -> Iterator[Segment]:
        return iter(self._segments)

    def close(self) -> None:
        """Stop decoding and free the model for the next request."""
        self._segments.close()


class AsrEngine(SingleModelEngine[AsrBackend]):
    """One backend, used by one request at a time behind a bounded wait queue."""

    settings: AsrSettings

    def __init__(self, settings: AsrSettings) -> None:
        super().__init__(settings)

    def decode(self, data: bytes, param: str = "file") -> Audio:
        """Decode an upload to 16 kHz mono within the duration limit.

        Raises:
            AudioError: empty, corrupt, not audio, zero length or too long.
        """
        return decode_audio(data, sample_rate=SAMPLE_RATE, max_seconds=self.settings.limits.max_duration_s, param=param)

    def transcribe(self, data: bytes, params: TranscriptionParams | None = None) -> Transcript:
        """Transcribe a whole file.

        Raises:
            AudioError: the upload is not usable audio.
            BadRequest: an option the backend does not support.
            Overloaded: too many requests already wait for the model.
            ServiceUnavailable: not loaded, or waited too long.
        """
        stream = self.stream(data, params)
        segments = list(stream)
        text = "".join(s.text for s in segments).strip()
        return Transcript(stream.model, text, stream.language, stream.duration, segments)

    def stream(self, data: bytes, params: TranscriptionParams | None = None) -> TranscriptStream:
        """Start a transcription whose segments arrive as they are decoded.

        Everything that can be refused (bad audio, full queue, bad params) is raised here,
        before the first segment, so callers can still answer with a plain error.
        """
        self.ensure_ready()
        params = params or TranscriptionParams()
        backend = self._backend
        assert backend is not None
        if params.hotwords and not backend.supports_hotwords:
            raise BadRequest(f"the {self.settings.backend} backend does not support hotwords", param="hotwords")
        audio = self.decode(data)
        lease = self.slot.acquire()
        started = time.perf_counter()
        try:
            info, segments = backend.transcribe(audio.samples, params)
        except Exception:
            lease.release()
            self.observe_call(started, "failed")
            raise
        watched = self._watch(segments, started, audio.duration)
        return TranscriptStream(self.settings.model_name, info, LeasedStream(watched, lease))

    def _watch(self, segments: Iterator[Segment], started: float, duration: float) -> Iterator[Segment]:
        count = 0
        outcome = "stopped"  # stays so when the consumer closes us early (client gone)
        try:
            for segment in segments:
                count += 1
                yield segment
            outcome = "done"
        except Exception:
            outcome = "failed"
            raise
        finally:
            self.observe_call(started, outcome)
            seconds = time.perf_counter() - started
            if outcome == "stopped":
                log.info("transcription stopped after %d segments, %.2f s: stream closed", count, seconds)
            elif outcome == "done":
                log.info("transcribed %.1f s of audio in %.2f s (%d segments)", duration, seconds, count)

    def describe(self) -> dict[str, Any]:
        """Model facts for ``/health``."""
        return {"model": self.settings.model_name, "backend": self.settings.backend, "aliases": self.settings.aliases}
