"""The decodes one live session wants, as the shared decoder takes them: finals first and never dropped,
then the speculative final, then only the newest partial (an older one not yet started is replaced)."""

from __future__ import annotations

import threading

from asr_service.live_jobs import DecodeJob


class DecodeQueue:
    """A session's pending decodes; :class:`asr_service.live.LiveSession` fills it, the decoder empties it."""

    def __init__(self, language: str | None) -> None:
        self._lock = threading.Lock()
        self._language = language
        self._closed = False
        self._partial: DecodeJob | None = None
        self._inflight: DecodeJob | None = None
        self._finals: list[DecodeJob] = []

    def next_job(self) -> DecodeJob | None:
        """The most urgent decode, removed from the session (finals first); None while one is in flight."""
        with self._lock:
            if self._closed or self._inflight is not None:
                return None
            if self._finals:
                job: DecodeJob | None = self._finals[0]
            else:
                job, self._partial = self._partial, None
            if job is not None and self._language is not None:
                job.language = self._language  # a language set after the request was made
            self._inflight = job
            return job

    def dropped(self, job: DecodeJob) -> None:
        """A partial decode was given up (e.g. the model was busy); a final never is."""
        with self._lock:
            if self._inflight is job:
                self._inflight = None

    def has_work(self) -> bool:
        """Whether a decode is waiting and none is in flight (a session's decodes run one after another)."""
        return not self._closed and self._inflight is None and (bool(self._finals) or self._partial is not None)

    def oldest_request(self) -> tuple[int, float]:
        """Sort key for the decoder: finals, then speculative finals, then partials; oldest first within each."""
        if self._finals:
            return (0, self._finals[0].requested)
        if self._partial is not None:
            return (1 if self._partial.may_be_final else 2, self._partial.requested)
        return (3, 0.0)
