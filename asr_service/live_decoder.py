"""Threads that run every live session's decodes on the shared model, most urgent first.

One thread by default; with a backend that batches, more (each session has at most one decode in flight,
so several sessions' decodes reach the model together).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from asr_service.live import LiveSession
from asr_service.live_jobs import Decode, DecodeJob
from asr_service.live_limits import LiveLimits
from asr_service.pcm import RATE
from common.errors import ApiError, Overloaded, ServiceUnavailable

log = logging.getLogger("suite.asr.live")


class LiveDecoder:
    """Threads that run every live session's decodes on the shared model, most urgent first."""

    def __init__(self, decode: Decode, limits: LiveLimits, acquire: Callable[[], Any]) -> None:
        self.limits = limits
        self._decode = decode
        self._acquire = acquire
        self._sessions: set[LiveSession] = set()
        self._wake = threading.Condition()
        self._stopped = False
        self._draining = False
        self._threads: list[threading.Thread] = []
        self.add_workers(1)

    def add_workers(self, count: int) -> None:
        """Start ``count`` more decoding threads (for a backend that decodes several at once)."""
        for _ in range(max(0, count)):
            thread = threading.Thread(target=self._run, name=f"live-decoder-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def open(self, *, sample_rate: int = RATE, language: str | None = None) -> LiveSession:
        """Start a session.

        Raises:
            Overloaded: ``max_sessions`` sessions are already open.
        """
        with self._wake:
            if self._draining:
                raise ServiceUnavailable("the service is shutting down", code="shutting_down")
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
        """Whether every decoding thread runs."""
        return all(thread.is_alive() for thread in self._threads)

    def wake(self) -> None:
        """Tell the threads a session may have work."""
        with self._wake:
            self._wake.notify_all()

    def remove(self, session: LiveSession) -> None:
        """Forget a session."""
        with self._wake:
            self._sessions.discard(session)

    def drain(self) -> None:
        """Stop taking sessions; open ones finish their utterance and get ``going_away`` (those still speaking
        after ``drain_s`` have their utterance committed)."""
        with self._wake:
            self._draining = True
            sessions = list(self._sessions)
        for session in sessions:
            session.drain()
        timer = threading.Timer(self.limits.drain_s, self._commit_open)
        timer.daemon = True
        timer.start()

    def _commit_open(self) -> None:
        with self._wake:
            sessions = list(self._sessions)
        for session in sessions:
            session.commit()

    def stop(self) -> None:
        """End the threads; open sessions get an error event."""
        with self._wake:
            self._stopped = True
            sessions = list(self._sessions)
            self._wake.notify_all()
        for session in sessions:
            session.fail(ServiceUnavailable("the service is shutting down", code="shutting_down"))

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
                started, cpu = time.monotonic(), time.process_time()
                try:
                    text, language = self._decode(job.samples, job.language, job.may_be_final)
                finally:
                    lease.release()
                log.debug(
                    "%s: %s of %.2f s audio, queued %.2f s, waited %.2f s, decoded in %.2f s (process CPU %.2f s)",
                    job.session.id,
                    "final" if job.final else "candidate" if job.may_be_final else "partial",
                    len(job.samples) / RATE,
                    waited - job.requested,
                    started - waited,
                    time.monotonic() - started,
                    time.process_time() - cpu,
                )
            except ApiError as exc:
                if job.final:
                    job.session.fail(exc)
                else:
                    job.session.dropped(job)
                continue
            except Exception as exc:  # keep serving the other sessions
                log.exception("live decode failed")
                job.session.fail(ApiError(f"decoding failed: {type(exc).__name__}", code="decode_failed"))
                continue
            job.session.deliver(job, text, language)
