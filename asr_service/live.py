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
import time
import uuid

import numpy as np

from asr_service.live_events import SessionEvents
from asr_service.live_jobs import DecodeJob, SessionDecoder, join_text
from asr_service.live_limits import LiveLimits
from asr_service.live_schedule import DecodeQueue
from asr_service.pcm import RATE, PcmConverter
from asr_service.vad import WINDOW, StreamingVad
from common.errors import ApiError, BadRequest

log = logging.getLogger("suite.asr.live")

SENTENCE_ENDS = (".", "?", "!", "。", "？", "！")
TRAILING_OFF = ("..", "…")
"""Whisper's mark for speech that stops mid-thought: not a sentence end."""

_session_ids = itertools.count(1)


class LiveSession(DecodeQueue):
    """One live transcription: feed PCM, read events (dicts) from :attr:`events`.

    Events: ``{"partial_text", "start", "end"}``, ``{"text", "start", "end", "final": True, "language"}``
    per utterance, ``{"event": "done", "text", "duration"}`` after :meth:`finish`, or
    ``{"error": {...}}`` (then no more events), or ``{"event": "going_away", "resume_from"}`` after
    :meth:`drain` (then no more events: audio from ``resume_from`` on was not transcribed). With
    :attr:`speech_events`, each utterance that will be transcribed is announced (``{"event":
    "speech_started", "start"}`` once it has ``min_speech_s`` of speech, ``{"event": "speech_stopped",
    "end"}``) and always gets its final, with empty text when the model heard no words. Times are seconds
    from the session's start.

    Every utterance with enough speech gets exactly one final decode, in order; ``done.text`` joins
    the finals' texts.
    """

    def __init__(
        self, decoder: SessionDecoder, limits: LiveLimits, *, sample_rate: int = RATE, language: str | None = None
    ) -> None:
        self.id = f"live-{next(_session_ids)}-{uuid.uuid4().hex[:8]}"
        self.limits = limits
        super().__init__(language)
        self._out = SessionEvents()
        self.events = self._out.queue
        self.done = self._out.done
        """Set once ``done`` or an error event has been queued."""
        self._decoder = decoder
        self._pcm = PcmConverter(sample_rate)
        self._vad = StreamingVad()
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
        self._speculated = -1
        self._prefix: tuple[int, str] = (0, "")
        """The open utterance's kept beginning: (its end sample, its text)."""
        self._results: dict[tuple[int, int, int], tuple[str, str | None, bool]] = {}
        """(utterance, start, end) -> (text, language, may stand as the final) of this utterance's decodes."""
        self._finishing = False
        self._draining = False
        self.going_away = False
        """Set when the session ended for a service restart (``going_away``): the client resumes elsewhere."""
        self.auto_end = True
        """End utterances at pauses (voice activity); False: only :meth:`commit` and the length limit do."""
        self.error: ApiError | None = None
        """Why the session failed, once it has."""

    @property
    def language(self) -> str | None:
        """The language every decode is made in; None detects it per utterance."""
        return self._language

    @language.setter
    def language(self, language: str | None) -> None:
        with self._lock:
            self._language = language
            if language is not None:
                self._utterance_language = language

    @property
    def speech_events(self) -> bool:
        """Whether ``speech_started`` / ``speech_stopped`` events are queued (off for ``/asr/live``)."""
        return self._out.speech

    @speech_events.setter
    def speech_events(self, on: bool) -> None:
        self._out.speech = on

    @property
    def every_final(self) -> bool:
        """Whether an utterance the model heard no words in still gets a final (empty text); off for ``/asr/live``."""
        return self._out.every_final

    @every_final.setter
    def every_final(self, on: bool) -> None:
        self._out.every_final = on

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
        """End the current utterance now; True when its final follows (False: no speech open, or too little)."""
        with self._lock:
            if self._speech_start is None:
                return False
            transcribed = self._end_utterance(min(self._total, self._speech_end + self._pad))
        self._decoder.wake()
        return transcribed

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
            raise BadRequest(
                f"session is longer than max_session_s ({self.limits.max_session_s:.0f} s)", code="session_too_long"
            )
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

    def drain(self) -> None:
        """The service is going away: the open utterance still ends (at the speaker's pause, or at :meth:`commit`)
        and gets its final; then ``going_away`` tells the client from where to resend its audio elsewhere."""
        with self._lock:
            self._draining = True
            self._maybe_done()

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
        self._out.failed(error)
        self.close()

    # -- audio and voice activity (feeding thread) --

    @property
    def _pad(self) -> int:
        return self.limits.samples(self.limits.pad_after_s)

    @property
    def _min_speech(self) -> int:
        """Speech samples an utterance needs to be transcribed (a whole number of VAD windows, at least one)."""
        return max(1, -(-self.limits.samples(self.limits.min_speech_s) // WINDOW)) * WINDOW

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
                self._trim(self._total - self.limits.samples(self.limits.pad_before_s))
            self._maybe_request_partial()
        self._decoder.wake()

    def _on_window(self, speech: bool) -> None:
        window_end = self._scored
        if speech:
            if self._speech_start is None:
                self._speech_start = max(
                    self._base, window_end - WINDOW - self.limits.samples(self.limits.pad_before_s)
                )
                self._prefix = (self._speech_start, "")
                self._speech_samples = 0
                self._last_partial_end = self._speech_start
            self._speech_end = window_end
            self._speech_samples += WINDOW
            if self._speech_samples == self._min_speech:  # from here on the utterance will be transcribed
                self._out.speech_started(self._speech_start)
            if window_end - self._speech_start >= self.limits.max_utterance_s * RATE:
                self._end_utterance(window_end)
            return
        if self._speech_start is None:
            return
        silence = window_end - self._speech_end
        target = self._speech_end + self._pad
        if not self.auto_end:
            return
        if silence >= self.limits.end_silence_s * RATE or self._sentence_ended():
            self._end_utterance(target)
        elif silence >= self._pad and self._speculated != target:
            # speculative final: decode exactly what the final would be while the pause goes on
            self._speculated = target
            self._request(target, final=False, speculative=True)

    def _maybe_request_partial(self) -> None:
        if self._speech_start is None or self._finishing:
            return
        if self._speech_samples < self._min_speech or self._scored - self._speech_end >= self._pad:
            return
        if self._scored - self._last_partial_end >= self.limits.partial_interval_s * RATE:
            self._request(self._scored, final=False)

    def _request(self, end: int, *, final: bool, speculative: bool = False) -> None:
        assert self._speech_start is not None
        start = self._speech_start
        decode_from, prefix = self._prefix if self._prefix[0] < end else (start, "")
        samples = self._audio[decode_from - self._base : end - self._base].copy()
        language = self._utterance_language
        job = DecodeJob(
            self, self._utterance, start, end, samples, final, language, final or speculative, prefix=prefix
        )
        job.decode_from = decode_from
        if final:
            self._finals.append(job)
        else:
            self._partial = job  # replaces an older partial that has not started yet
            self._last_partial_end = end

    def _heard_all(self) -> tuple[int, int, int] | None:
        """The newest decode of the open utterance that heard every speech window of it and may be its final:
        the speculative one, or a partial when finals take the fast path too."""
        reusable = [k for k, (_, _, may_be_final) in self._results.items() if k[2] >= self._speech_end and may_be_final]
        return max(reusable, key=lambda k: k[2], default=None)

    def _sentence_ended(self) -> bool:
        """The pause is ``sentence_end_silence_s`` long and what was heard of the utterance ends a sentence."""
        if self._speech_start is None or self._scored - self._speech_end < self.limits.sentence_end_silence_s * RATE:
            return False
        key = self._heard_all()
        text = self._results[key][0] if key is not None else ""
        return text.endswith(SENTENCE_ENDS) and not text.endswith(TRAILING_OFF)

    def _end_utterance(self, end: int) -> bool:
        """End the open utterance at ``end``; whether it had speech enough to be transcribed (its final follows)."""
        assert self._speech_start is not None
        transcribed = self._speech_samples >= self._min_speech
        if transcribed:
            self._out.speech_stopped(end)
            heard = self._speech_end
            key = self._heard_all()
            inflight = self._inflight
            if key is not None:
                self._emit_final(key, *self._results[key][:2])
            elif (
                inflight is not None
                and not inflight.final
                and (inflight.utterance, inflight.start) == (self._utterance, self._speech_start)
                and inflight.end >= heard
                and (inflight.may_be_final or self.limits.fast_finals)
            ):
                inflight.final = True  # it is being decoded right now: its result is the final (see deliver)
            else:
                self._request(end, final=True)
        self._partial = None
        self._results.clear()
        self._utterance += 1
        self._utterance_language = self._language
        self._speech_start = None
        self._trim(end)
        self._maybe_done()
        return transcribed

    def _trim(self, keep_from: int) -> None:
        keep_from = max(self._base, min(keep_from, self._total))
        self._audio = self._audio[keep_from - self._base :]
        self._base = keep_from

    # -- decoder side (next_job, dropped, has_work and oldest_request come from DecodeQueue) --

    def deliver(self, job: DecodeJob, text: str, language: str | None) -> None:
        """Take a decode's result."""
        with self._lock:
            if self._closed:
                return
            key = job.key
            if self._inflight is job:
                self._inflight = None
            if job.final:
                if self._finals and self._finals[0] is job:
                    self._finals.pop(0)
                if not text and not job.may_be_final:
                    # a partial taken over as the final, decoded as a partial is: it may have given up on audio
                    # the model looped on. Only a decode that never gives up may leave an utterance without words.
                    job.may_be_final = True
                    job.requested = time.monotonic()
                    self._finals.insert(0, job)
                    return
                self._emit_final(key, join_text(job.prefix, text), language)
                self._maybe_done()
                return
            if job.utterance != self._utterance:
                return  # that utterance is already final
            if self._utterance_language is None and (job.end - job.start) >= RATE:
                self._utterance_language = language
            decoded, text = text, join_text(job.prefix, text)
            new_audio = job.end - job.decode_from
            if job.may_be_final and decoded and job.decode_from == self._prefix[0] and self._keeps(new_audio):
                self._prefix = (job.end, text)  # decoded at a pause: later decodes start after it
            # a partial with no text may be one the backend gave up on (it looped): never a final
            self._results[key] = (text, language, job.may_be_final or (self.limits.fast_finals and bool(decoded)))
            if text:
                self._out.partial(text, job.start, job.end)
            if self.auto_end and not self._finishing and self._sentence_ended():
                self._end_utterance(min(self._total, self._speech_end + self._pad))

    def _keeps(self, new_audio: int) -> bool:
        return self.limits.stable_prefix_s > 0 and new_audio >= self.limits.samples(self.limits.stable_prefix_s)

    def _emit_final(self, key: tuple[int, int, int], text: str, language: str | None) -> None:
        self._out.final(text, key[1], key[2], language)

    def _maybe_done(self) -> None:
        promised = self._inflight is not None and self._inflight.final
        if self._finals or promised or self._speech_start is not None:
            return
        if self._finishing:
            self._out.finished(self._language, self._total)
        elif self._draining:
            self.going_away = True
            self._out.going_away(self._base)
