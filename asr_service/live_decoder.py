"""Threads that run every live session's decodes on the shared model, most urgent first.

With a backend that batches, the finals of several sessions that are ready at the same moment are decoded
together (their model calls meet in the backend's batch); a partial is always decoded alone, so it never
holds up a final for longer than one short decode. A backend with several model replicas gets as many
decoding threads ("lanes"), so two sessions' decodes run side by side.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
        self._batch = 1
        self._helpers: ThreadPoolExecutor | None = None
        self._threads = [threading.Thread(target=self._run, name="live-decoder", daemon=True)]
        self._threads[0].start()

    def allow_batches(self, size: int, lanes: int = 1) -> None:
        """Decode up to ``size`` sessions' finals at once, and ``lanes`` sessions' decodes side by side (for a
        backend that batches concurrent decodes on ``lanes`` model replicas)."""
        if size > 1 and self._helpers is None:
            self._helpers = ThreadPoolExecutor((size - 1) * lanes, thread_name_prefix="live-batch")
            self._batch = size
        while len(self._threads) < lanes:
            lane = threading.Thread(target=self._run, name=f"live-decoder-{len(self._threads)}", daemon=True)
            self._threads.append(lane)
            lane.start()

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
        """Whether the decoding threads run."""
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
        """End the thread; open sessions get an error event."""
        with self._wake:
            self._stopped = True
            sessions = list(self._sessions)
            self._wake.notify_all()
        for session in sessions:
            session.fail(ServiceUnavailable("the service is shutting down", code="shutting_down"))
        if self._helpers is not None:
            self._helpers.shutdown(wait=False)

    def _next(self) -> list[DecodeJob] | None:
        """The most urgent decode; when it may be a final, with other sessions' ready finals (up to the batch)."""
        with self._wake:
            while not self._stopped:
                ready = sorted((s for s in self._sessions if s.has_work()), key=LiveSession.oldest_request)
                jobs: list[DecodeJob] = []
                for session in ready:
                    if jobs and (len(jobs) >= self._batch or not jobs[0].may_be_final):
                        break
                    if jobs and session.oldest_request()[0] > 1:  # a partial: never batched with finals
                        break
                    job = session.next_job()
                    if job is not None:
                        jobs.append(job)
                if jobs:
                    return jobs
                if not ready:
                    self._wake.wait(1.0)
        return None

    def _run(self) -> None:
        while (jobs := self._next()) is not None:
            helpers = self._helpers
            if helpers is None or len(jobs) == 1:
                for job in jobs:
                    self._decode_one(job)
                continue
            others = [helpers.submit(self._decode_one, job) for job in jobs[1:]]
            self._decode_one(jobs[0])
            for other in others:
                other.result()

    def _decode_one(self, job: DecodeJob) -> None:
        """Decode one job and hand its result (or its failure) to its session; never raises."""
        try:
            waited = time.monotonic()
            lease = self._acquire()
            started, cpu = time.monotonic(), time.process_time()
            try:
                text, language = self._decode(job.samples, job.language, job.may_be_final, job.prefix)
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
            return
        except Exception as exc:  # keep serving the other sessions
            log.exception("live decode failed")
            job.session.fail(ApiError(f"decoding failed: {type(exc).__name__}", code="decode_failed"))
            return
        job.session.deliver(job, text, language)
