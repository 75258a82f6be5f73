"""Live transcription sessions: PCM in, partial and final texts out. No socket and no HTTP here.

A :class:`LiveSession` is fed raw 16-bit PCM as it arrives. Voice activity detection cuts the audio
into utterances; while one is spoken the session asks for *partial* decodes of it, and when the
speaker pauses (or the utterance reaches its maximum length) for a *final* one. A single
:class:`LiveDecoder` thread per engine runs those decodes for every session on the shared model:
finals first and never dropped, partials only for the newest audio of each session (older requests
are replaced, so a slow machine skips partials instead of falling behind).

While the speaker pauses, the decoder already transcribes the utterance as it will be finalised
(up to the end of speech plus a little silence); if the pause turns out long enough, that result is
the final text, so it arrives as soon as the pause is recognised instead of one decode later.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from asr_service.vad import WINDOW, StreamingVad
from common.errors import ApiError, BadRequest, Overloaded

log = logging.getLogger("suite.asr.live")

RATE = 16000
_session_ids = itertools.count(1)


class LiveLimits(BaseModel):
    """``live:`` group of the ASR config: bounds and timing of live sessions."""

    model_config = ConfigDict(extra="forbid")

    max_sessions: int = Field(default=4, ge=0, le=64)
    """Live sessions at once; more are refused with close code 1013 (try again later)."""
    max_session_s: float = Field(default=3600.0, gt=0)
    """Seconds of audio one session may send."""
    max_utterance_s: float = Field(default=20.0, ge=1, le=30)
    """An utterance this long is finalised even without a pause (Whisper hears 30 s at most)."""
    max_frame_bytes: int = Field(default=256 * 1024, ge=1024)
    """Largest binary frame; bigger ones end the session with close code 1009."""
    idle_timeout_s: float = Field(default=30.0, gt=0)
    """A session that sends nothing for this long is closed."""
    end_silence_s: float = Field(default=0.5, ge=0.1, le=5)
    """A pause this long ends an utterance."""
    partial_interval_s: float = Field(default=0.5, ge=0.1)
    """New audio needed before another partial decode of the same utterance."""
    min_speech_s: float = Field(default=0.25, ge=0)
    """Utterances with less speech than this are dropped as noise."""
    speech_threshold: float = Field(default=0.5, gt=0, lt=1)
    """Silero speech probability above which a 32 ms window counts as speech."""
    fast_finals: bool = True
    """Finals take the backend's fast path for short utterances too (Whisper: a shorter window);
    off, they are decoded as the file routes decode them (slower, the same text as ``/asr``)."""
    pad_before_s: float = Field(default=0.5, ge=0, le=1)
    """Audio kept before the first speech window of an utterance (less cuts Whisper's first word)."""
    pad_after_s: float = Field(default=0.2, ge=0, le=1)
    """Audio kept after the last speech window; the final is decoded once this much pause is heard."""


@dataclass
class DecodeJob:
    """One decode the session wants: samples of one utterance, and whether the result is final."""

    session: LiveSession
    utterance: int
    start: int
    end: int
    samples: np.ndarray
    final: bool
    language: str | None
    may_be_final: bool
    """A final, or a speculative decode of exactly what the final will be."""
    requested: float = field(default_factory=time.monotonic)


Decode = Callable[[np.ndarray, str | None, bool], tuple[str, str | None]]
"""``decode(samples_16k, language, may_be_final) -> (text, language)``; the caller holds the model."""


class PcmConverter:
    """Raw signed 16-bit little-endian mono PCM at any rate -> float32 at 16 kHz (stateful resampling)."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._resampler = None if sample_rate == RATE else av.AudioResampler(format="flt", layout="mono", rate=RATE)

    def convert(self, pcm: bytes) -> np.ndarray:
        """Convert one frame; raises BadRequest on an odd byte count."""
        if len(pcm) % 2:
            raise BadRequest(f"binary frame of {len(pcm)} bytes is not whole 16-bit samples", code="odd_frame")
        ints = np.frombuffer(pcm, dtype="<i2")
        if self._resampler is None:
            return ints.astype(np.float32) / 32768.0
        frame = av.AudioFrame.from_ndarray(ints.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        return self._resample(frame)

    def flush(self) -> np.ndarray:
        """The resampler's buffered tail."""
        return self._resample(None) if self._resampler is not None else np.zeros(0, dtype=np.float32)

    def _resample(self, frame: av.AudioFrame | None) -> np.ndarray:
        assert self._resampler is not None
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, dtype=np.float32)


class LiveSession:
    """One live transcription: feed PCM, read events (dicts) from :attr:`events`.

    Events: ``{"partial_text", "start", "end"}``, ``{"text", "start", "end", "final": True, "language"}``
    per utterance, ``{"event": "done", "text", "duration"}`` after :meth:`finish`, or
    ``{"error": {...}}`` (then no more events). Times are seconds from the session's start.
    """

    def __init__(
        self, decoder: LiveDecoder, limits: LiveLimits, *, sample_rate: int = RATE, language: str | None = None
    ) -> None:
        self.id = f"live-{next(_session_ids)}-{uuid.uuid4().hex[:8]}"
        self.limits = limits
        self.language = language
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._decoder = decoder
        self._pcm = PcmConverter(sample_rate)
        self._vad = StreamingVad()
        self._lock = threading.Lock()
        # audio of the current utterance (or the last pad_s of silence before one); _base is its first sample
        self._audio = np.zeros(0, dtype=np.float32)
        self._base = 0
        self._total = 0
        self._scored = 0
        self._utterance = 0
        self._speech_start: int | None = None
        self._speech_end = 0
        self._speech_samples = 0
        self._utterance_language: str | None = language
        self._last_partial_end = 0
        self._partial: DecodeJob | None = None
        self._inflight: DecodeJob | None = None
        self._speculated = -1
        self._finals: list[DecodeJob] = []
        self._results: dict[tuple[int, int, int], tuple[str, str | None]] = {}
        self._texts: list[str] = []
        self._finishing = False
        self._closed = False
        self.auto_end = True
        """End utterances at pauses (voice activity); False: only :meth:`commit` and the length limit do."""
        self.error: ApiError | None = None
        """Why the session failed, once it has."""
        self.done = threading.Event()
        """Set once ``done`` or an error event has been queued."""

    @property
    def duration(self) -> float:
        """Seconds of audio received."""
        return self._total / RATE

    @property
    def sample_rate(self) -> int:
        """Rate of the PCM the client sends."""
        return self._pcm.sample_rate

    @property
    def finishing(self) -> bool:
        """Whether :meth:`finish` was called."""
        return self._finishing

    def commit(self) -> bool:
        """End the current utterance now (its final follows); False when no speech is open."""
        with self._lock:
            if self._speech_start is None:
                return False
            self._end_utterance(min(self._total, self._speech_end + self._pad))
        self._decoder.wake()
        return True

    def clear(self) -> None:
        """Drop the audio of the current utterance without transcribing it."""
        with self._lock:
            self._partial = None
            self._results.clear()
            if self._speech_start is not None:
                self._utterance += 1
                self._speech_start = None
            self._trim(self._total)

    def feed(self, pcm: bytes) -> None:
        """Add a frame of PCM.

        Raises:
            BadRequest: an odd byte count, or audio after :meth:`finish`.
            ApiError: the session is over its length limit.
        """
        if self._finishing:
            raise BadRequest("audio after the end event", code="audio_after_end")
        samples = self._pcm.convert(pcm)
        if (self._total + len(samples)) / RATE > self.limits.max_session_s:
            raise SessionTooLong(f"session is longer than max_session_s ({self.limits.max_session_s:.0f} s)")
        self._add(samples)

    def finish(self) -> None:
        """No more audio: finalise the open utterance, then queue ``done`` once every final is out."""
        with self._lock:
            if self._finishing:
                return
            self._finishing = True
        self._add(self._pcm.flush())
        with self._lock:
            if self._speech_start is not None:
                self._end_utterance(min(self._total, self._speech_end + self._pad))
            self._maybe_done()
        self._decoder.wake()

    def close(self) -> None:
        """Forget the session (client gone): queued decodes are dropped."""
        with self._lock:
            self._closed = True
            self._partial = None
            self._finals.clear()
        self._decoder.remove(self)

    def fail(self, error: ApiError) -> None:
        """Queue an error event and stop."""
        if self.error is not None:
            return
        self.error = error
        self.events.put({"error": {"message": error.message, "type": error.type, "code": error.code}})
        self.done.set()
        self.close()

    # -- audio and voice activity (feeding thread) --

    @property
    def _pad(self) -> int:
        return int(self.limits.pad_after_s * RATE)

    @property
    def _lead(self) -> int:
        return int(self.limits.pad_before_s * RATE)

    def _add(self, samples: np.ndarray) -> None:
        if not len(samples):
            return
        probabilities = self._vad.feed(samples)
        with self._lock:
            self._audio = np.concatenate([self._audio, samples])
            self._total += len(samples)
            for probability in probabilities:
                self._scored += WINDOW
                self._on_window(float(probability) >= self.limits.speech_threshold)
            if self._speech_start is None:  # keep only the lead-in of the next utterance
                self._trim(self._total - self._lead)
            self._maybe_request_partial()
        self._decoder.wake()

    def _on_window(self, speech: bool) -> None:
        window_end = self._scored
        if speech:
            if self._speech_start is None:
                self._speech_start = max(self._base, window_end - WINDOW - self._lead)
                self._speech_samples = 0
                self._last_partial_end = self._speech_start
            self._speech_end = window_end
            self._speech_samples += WINDOW
            if window_end - self._speech_start >= self.limits.max_utterance_s * RATE:
                self._end_utterance(window_end)
            return
        if self._speech_start is None:
            return
        silence = window_end - self._speech_end
        target = self._speech_end + self._pad
        if not self.auto_end:
            return
        if silence >= self.limits.end_silence_s * RATE:
            self._end_utterance(target)
        elif silence >= self._pad and self._speculated != target:
            # speculative final: decode exactly what the final would be while the pause goes on
            self._speculated = target
            self._request(target, final=False, speculative=True)

    def _maybe_request_partial(self) -> None:
        if self._speech_start is None or self._finishing:
            return
        if self._speech_samples < self.limits.min_speech_s * RATE or self._scored - self._speech_end >= self._pad:
            return
        if self._scored - self._last_partial_end >= self.limits.partial_interval_s * RATE:
            self._request(self._scored, final=False)

    def _request(self, end: int, *, final: bool, speculative: bool = False) -> None:
        assert self._speech_start is not None
        start = self._speech_start
        job = DecodeJob(
            self,
            self._utterance,
            start,
            end,
            self._audio[start - self._base : end - self._base].copy(),
            final,
            self._utterance_language,
            final or speculative,
        )
        if final:
            self._finals.append(job)
        else:
            self._partial = job  # replaces an older partial that has not started yet
            self._last_partial_end = end

    def _end_utterance(self, end: int) -> None:
        assert self._speech_start is not None
        if self._speech_samples >= self.limits.min_speech_s * RATE:
            key = (self._utterance, self._speech_start, end)
            inflight = self._inflight
            if key in self._results:  # the speculative decode already covered exactly this
                self._emit_final(key, *self._results[key])
            elif inflight is not None and (inflight.utterance, inflight.start, inflight.end) == key:
                inflight.final = True  # it is being decoded right now: its result is the final
            else:
                self._request(end, final=True)
        self._partial = None
        self._results.clear()
        self._utterance += 1
        self._utterance_language = self.language
        self._speech_start = None
        self._trim(end)

    def _trim(self, keep_from: int) -> None:
        keep_from = max(self._base, min(keep_from, self._total))
        self._audio = self._audio[keep_from - self._base :]
        self._base = keep_from

    # -- decoder side --

    def next_job(self) -> DecodeJob | None:
        """The most urgent decode, removed from the session (finals first)."""
        with self._lock:
            if self._closed:
                return None
            if self._finals:
                job: DecodeJob | None = self._finals[0]
            else:
                job, self._partial = self._partial, None
            self._inflight = job
            return job

    def dropped(self, job: DecodeJob) -> None:
        """A partial decode was given up (e.g. the model was busy); a final never is."""
        with self._lock:
            if self._inflight is job:
                self._inflight = None

    def has_work(self) -> bool:
        """Whether a decode is waiting."""
        return not self._closed and (bool(self._finals) or self._partial is not None)

    def oldest_request(self) -> tuple[int, float]:
        """Sort key for the decoder: finals before partials, then the oldest request."""
        if self._finals:
            return (0, self._finals[0].requested)
        if self._partial is not None:
            return (1, self._partial.requested)
        return (2, 0.0)

    def deliver(self, job: DecodeJob, text: str, language: str | None) -> None:
        """Take a decode's result."""
        with self._lock:
            if self._closed:
                return
            key = (job.utterance, job.start, job.end)
            if self._inflight is job:
                self._inflight = None
            if job.final:
                if self._finals and self._finals[0] is job:
                    self._finals.pop(0)
                self._emit_final(key, text, language)
                self._maybe_done()
                return
            if job.utterance != self._utterance:
                return  # that utterance is already final
            if self._utterance_language is None and (job.end - job.start) >= RATE:
                self._utterance_language = language
            self._results[key] = (text, language)
            if text:
                self.events.put({"partial_text": text, "start": _seconds(job.start), "end": _seconds(job.end)})

    def _emit_final(self, key: tuple[int, int, int], text: str, language: str | None) -> None:
        if text:
            self._texts.append(text)
            self.events.put(
                {
                    "text": text,
                    "start": _seconds(key[1]),
                    "end": _seconds(key[2]),
                    "final": True,
                    "language": language,
                }
            )

    def _maybe_done(self) -> None:
        promised = self._inflight is not None and self._inflight.final
        if (
            self._finishing
            and not self._finals
            and not promised
            and self._speech_start is None
            and not self.done.is_set()
        ):
            separator = "" if self.language in ("zh", "ja", "yue") else " "
            self.events.put({"event": "done", "text": separator.join(self._texts), "duration": _seconds(self._total)})
            self.done.set()


class SessionTooLong(ApiError):
    """A live session went over one of its length limits."""

    status = 400
    type = "invalid_request_error"
    default_code = "session_too_long"


def _seconds(samples: int) -> float:
    return round(samples / RATE, 3)


class LiveDecoder:
    """One thread that runs every live session's decodes on the shared model, most urgent first."""

    def __init__(self, decode: Decode, limits: LiveLimits, acquire: Callable[[], Any]) -> None:
        self.limits = limits
        self._decode = decode
        self._acquire = acquire
        self._sessions: set[LiveSession] = set()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="live-decoder", daemon=True)
        self._thread.start()

    def open(self, *, sample_rate: int = RATE, language: str | None = None) -> LiveSession:
        """Start a session.

        Raises:
            Overloaded: ``max_sessions`` sessions are already open.
        """
        with self._wake:
            if len(self._sessions) >= self.limits.max_sessions:
                raise Overloaded(
                    f"{len(self._sessions)} live sessions are open (the limit); try again later", retry_after=5
                )
            session = LiveSession(self, self.limits, sample_rate=sample_rate, language=language)
            self._sessions.add(session)
        return session

    def active(self) -> int:
        """Open sessions."""
        return len(self._sessions)

    def alive(self) -> bool:
        """Whether the decoding thread runs."""
        return self._thread.is_alive()

    def wake(self) -> None:
        """Tell the thread a session may have work."""
        with self._wake:
            self._wake.notify()

    def remove(self, session: LiveSession) -> None:
        """Forget a session."""
        with self._wake:
            self._sessions.discard(session)

    def stop(self) -> None:
        """End the thread; open sessions get an error event."""
        with self._wake:
            self._stopped = True
            sessions = list(self._sessions)
            self._wake.notify_all()
        for session in sessions:
            session.fail(ShuttingDown("the service is shutting down"))

    def _next(self) -> DecodeJob | None:
        with self._wake:
            while not self._stopped:
                ready = [s for s in self._sessions if s.has_work()]
                if ready:
                    job = min(ready, key=LiveSession.oldest_request).next_job()
                    if job is not None:
                        return job
                    continue
                self._wake.wait(1.0)
        return None

    def _run(self) -> None:
        while (job := self._next()) is not None:
            try:
                waited = time.monotonic()
                lease = self._acquire()
                started = time.monotonic()
                try:
                    text, language = self._decode(job.samples, job.language, job.may_be_final)
                finally:
                    lease.release()
                log.debug(
                    "%s: %s of %.2f s audio, queued %.2f s, waited %.2f s, decoded in %.2f s",
                    job.session.id,
                    "final" if job.final else "candidate" if job.may_be_final else "partial",
                    len(job.samples) / RATE,
                    waited - job.requested,
                    started - waited,
                    time.monotonic() - started,
                )
            except ApiError as exc:
                if job.final:
                    job.session.fail(exc)
                else:
                    job.session.dropped(job)
                continue
            except Exception as exc:  # keep serving the other sessions
                log.exception("live decode failed")
                job.session.fail(DecodeFailed(f"decoding failed: {type(exc).__name__}"))
                continue
            job.session.deliver(job, text, language)


class ShuttingDown(ApiError):
    """The service stops while a session is open."""

    status = 503
    type = "service_unavailable_error"
    default_code = "shutting_down"


class DecodeFailed(ApiError):
    """The model raised while decoding live audio."""

    status = 500
    type = "server_error"
    default_code = "decode_failed"
