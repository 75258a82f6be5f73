"""The ASR engine: decode uploads, run the backend, stream segments. No HTTP here.

A backend that batches (``max_batch`` > 1, e.g. Whisper) serves that many requests at once, and live
decodes run beside them (the backend orders and batches the model calls); any other backend serves one
request at a time, live decodes taking turns with it.

>>> engine = AsrEngine(AsrSettings.load()); engine.start(background=False)
>>> engine.transcribe(open("speech.wav", "rb").read()).text
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from asr_service.backends import AsrBackend, Segment, TranscriptInfo, TranscriptionParams
from asr_service.live import LiveSession
from asr_service.live_decoder import LiveDecoder
from asr_service.settings import AsrSettings
from asr_service.text import chinese_punctuation
from common.audio import Audio, decode_audio
from common.errors import BadRequest
from common.lifecycle import SingleModelEngine
from common.model_slot import Lease, LeasedStream, ModelSlot, collect
from common.slot_pool import SlotPool

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
    """One backend, used by ``max_batch`` requests at a time (1 unless it batches) behind a bounded wait queue."""

    settings: AsrSettings
    slot: ModelSlot | SlotPool  # type: ignore[assignment]

    def __init__(self, settings: AsrSettings) -> None:
        super().__init__(settings)
        self._batching = False
        self.live = LiveDecoder(self._decode_live, settings.live, self._live_lease)

    def _load(self) -> None:
        super()._load()
        batch = int(getattr(self._backend, "max_batch", 1))
        if batch <= 1:
            return
        settings = self.settings
        limits, threads = settings.limits, settings.server.threads
        if threads <= limits.max_waiting + batch + settings.live.max_sessions:
            backend, self._backend = self._backend, None
            if backend is not None:
                backend.close()
            raise ValueError(
                f"server.threads ({threads}) must exceed limits.max_waiting ({limits.max_waiting}) + the batch "
                f"({batch}) + live.max_sessions ({settings.live.max_sessions}) so that requests past the queue get 429"
            )
        self.slot = SlotPool(
            settings.model_name, capacity=batch, max_waiting=limits.max_waiting, wait_timeout=limits.wait_timeout_s
        )
        self._batching = True
        lanes = int(getattr(self._backend, "workers", 1))
        self.live.allow_batches(min(batch, settings.live.max_sessions), min(lanes, settings.live.max_sessions))

    def _live_lease(self) -> Lease:
        """A batching backend orders live decodes itself (they go first); otherwise they take turns for the model."""
        if self._batching:
            return Lease(lambda: None)
        slot = self.slot
        assert isinstance(slot, ModelSlot)
        return slot.acquire(priority=True)

    def open_live(self, *, sample_rate: int = SAMPLE_RATE, language: str | None = None) -> LiveSession:
        """Start a live session (feed it PCM, read its events); close it when the client goes.

        Raises:
            ServiceUnavailable: the model is not loaded.
            Overloaded: the live session limit is reached.
        """
        self.ensure_ready()
        return self.live.open(sample_rate=sample_rate, language=language)

    def _decode_live(
        self, samples: np.ndarray, language: str | None, may_be_final: bool, said_before: str = ""
    ) -> tuple[str, str | None]:
        """One utterance to text; the live decoder holds the model.

        Partials take the backend's fast utterance path; what may become a final does too unless
        ``live.fast_finals`` is off (then finals are decoded exactly as the file routes decode).
        """
        backend = self._backend
        assert backend is not None
        started = time.perf_counter()
        outcome = "failed"
        try:
            fast = not may_be_final or self.settings.live.fast_finals
            params = TranscriptionParams(
                language=language, utterance=fast, preview=not may_be_final, said_before=said_before
            )
            info, segments = backend.transcribe(samples, params)
            text = "".join(segment.text for segment in segments).strip()
            outcome = "done"
        finally:
            self.observe_call(started, outcome)
        if info.language == "zh":
            text = chinese_punctuation(text)
        return text, info.language

    def decode(self, data: bytes, param: str = "file") -> Audio:
        """Decode an upload to 16 kHz mono within the duration limit.

        Raises:
            AudioError: empty, corrupt, not audio, zero length or too long.
        """
        return decode_audio(data, sample_rate=SAMPLE_RATE, max_seconds=self.settings.limits.max_duration_s, param=param)

    def transcribe(
        self, data: bytes, params: TranscriptionParams | None = None, client_gone: Callable[[], bool] | None = None
    ) -> Transcript:
        """Transcribe a whole file; with ``client_gone``, stop between segments once the client has left.

        Raises:
            ClientGone: the client left first.
            AudioError: the upload is not usable audio.
            BadRequest: an option the backend does not support.
            Overloaded: too many requests already wait for the model.
            ServiceUnavailable: not loaded, or waited too long.
        """
        stream = self.stream(data, params)
        segments = collect(stream, client_gone)
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
        fix: Callable[[str], str] | None = chinese_punctuation if info.language == "zh" else None
        watched = self._watch(segments, started, audio.duration, fix)
        return TranscriptStream(self.settings.model_name, info, LeasedStream(watched, lease))

    def _watch(
        self, segments: Iterator[Segment], started: float, duration: float, fix: Callable[[str], str] | None
    ) -> Iterator[Segment]:
        count = 0
        outcome = "stopped"  # stays so when the consumer closes us early (client gone)
        try:
            for segment in segments:
                count += 1
                yield dataclasses.replace(segment, text=fix(segment.text)) if fix else segment
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
        return {
            "model": self.settings.model_name,
            "backend": self.settings.backend,
            "aliases": self.settings.aliases,
            "live_sessions": self.live.active(),
        }

    def workers_alive(self) -> bool:
        """The live decoder threads (and the backend's batching worker, if any) run."""
        alive = getattr(self._backend, "alive", None)
        return self.live.alive() and (alive is None or bool(alive()))

    def queue_depths(self) -> dict[str, Callable[[], int]]:
        """Requests waiting for the model, and open live sessions."""
        return {**super().queue_depths(), "live_sessions": self.live.active}

    def begin_shutdown(self) -> None:
        """Drain live sessions: each finishes its utterance, gets ``going_away`` and close code 1012."""
        self.live.drain()

    def close(self) -> None:
        """End live sessions (each gets an error event), then free the model."""
        self.live.stop()
        super().close()
