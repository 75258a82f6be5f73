"""The live transcription client of ``core.py``: one ``/asr/live`` session that outlives the replica serving it.

A replica that is being stopped finishes the utterance it is hearing, then sends ``going_away`` (with the
point from which nothing was transcribed) and closes with 1012; a replica that dies (kill -9, a lost host)
just drops the connection. Either way the session reconnects to the same URL (behind a load balancer:
another replica), resends the audio not yet covered by a final, and goes on. Event times stay on one
timeline from the first connection's start, and ``done`` joins the finals of every connection.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from core_errors import ERROR_BY_TYPE, ServiceUnavailableError, StreamError

FRAME_S = 0.1
"""Resent audio goes in frames of this many seconds."""
UNSPACED_LANGUAGES = ("zh", "ja", "yue")
MAX_RESUMES = 20
"""A session that had to reconnect this often gives up (a replica that keeps closing it is no failover)."""


class LiveTranscription:
    """One ``/asr/live`` session: :meth:`send` PCM as it comes, iterate the service's events as they arrive.

    Events are dicts: ``{"partial_text", "start", "end"}``, ``{"text", "final": True, "language", ...}`` per
    utterance and ``{"event": "done", "text", "duration"}`` after :meth:`end`. An error event raises its
    :class:`SuiteError` type. A replica going away or dying is not an error: the session resumes on the
    same URL within ``resume_timeout`` seconds (``resumes`` counts how often), or raises
    :class:`ServiceUnavailableError` when none answers.
    """

    def __init__(
        self, url: str, headers: dict[str, str], sample_rate: int = 16000, *, resume_timeout: float = 30.0
    ) -> None:
        self._url = url
        self._headers = headers
        self._bytes_per_second = 2 * sample_rate
        self._resume_timeout = resume_timeout
        self._lock = threading.Lock()
        self._audio = bytearray()
        """PCM sent and not yet covered by a final; its first byte is at :attr:`_kept_from` of the stream."""
        self._kept_from = 0
        self._sent = 0
        self._offset = 0.0
        """Where the current connection's time 0 lies on the session's timeline (seconds)."""
        self._ended = False
        self._finals: list[dict[str, Any]] = []
        self.resumes = 0
        self._ws = self._open()

    def _open(self) -> Any:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        try:
            ws = connect(
                self._url,
                additional_headers=self._headers,
                max_size=None,
                open_timeout=30,
                ping_interval=5,
                ping_timeout=5,
            )
            self.ready: dict[str, Any] = _raise_error(json.loads(ws.recv(timeout=60)))
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ServiceUnavailableError(f"cannot open {self._url}: {exc}") from None
        return ws

    def send(self, pcm: bytes) -> None:
        """Send signed 16-bit little-endian mono PCM at the session's sample rate (whole samples)."""
        with self._lock:
            self._audio += pcm
            self._sent += len(pcm)
            self._quietly(self._ws.send, pcm)  # a broken connection is resumed by the iterator

    def end(self) -> None:
        """No more audio: the last utterance is finalised, then ``done`` comes and the session closes."""
        with self._lock:
            self._ended = True
            self._quietly(self._ws.send, json.dumps({"event": "end"}))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from websockets.exceptions import ConnectionClosed

        while True:
            resume_from = None
            try:
                for message in self._ws:
                    event = _raise_error(json.loads(message))
                    if event.get("event") == "going_away":
                        resume_from = self._offset + event["resume_from"]
                        break
                    yield self._on_timeline(event)
                    if event.get("event") == "done":
                        return
            except ConnectionClosed:
                pass
            self._resume(resume_from)

    def _on_timeline(self, event: dict[str, Any]) -> dict[str, Any]:
        for key in ("start", "end"):
            if key in event:
                event[key] = round(event[key] + self._offset, 3)
        if event.get("final"):
            self._finals.append(event)
            self._forget_before(event["end"])
        elif event.get("event") == "done" and self.resumes:  # the last connection's done has its finals only
            unspaced = self._finals and self._finals[-1].get("language") in UNSPACED_LANGUAGES
            text = ("" if unspaced else " ").join(final["text"] for final in self._finals if final["text"])
            event = {**event, "text": text, "duration": round(self._sent / self._bytes_per_second, 3)}
        return event

    def _forget_before(self, seconds: float) -> None:
        """Audio before ``seconds`` is transcribed: no need to send it again."""
        with self._lock:
            position = min(self._sent, int(seconds * self._bytes_per_second) // 2 * 2)
            if position > self._kept_from:
                del self._audio[: position - self._kept_from]
                self._kept_from = position

    def _resume(self, resume_from: float | None) -> None:
        """Reconnect and resend what no final covers (from ``resume_from`` when the service said so)."""
        if self.resumes >= MAX_RESUMES:
            raise ServiceUnavailableError(
                f"live session lost: it reconnected to {self._url} {self.resumes} times already"
            )
        if resume_from is not None:
            self._forget_before(resume_from)
        deadline = time.monotonic() + self._resume_timeout
        with self._lock:
            self._quietly(self._ws.close)
            while True:
                try:
                    self._ws = self._open()
                    break
                except ServiceUnavailableError:
                    if time.monotonic() > deadline:
                        raise ServiceUnavailableError(
                            f"live session lost: no replica at {self._url} for {self._resume_timeout:.0f} s"
                        ) from None
                    time.sleep(0.5)
            self.resumes += 1
            self._offset = self._kept_from / self._bytes_per_second
            frame = int(FRAME_S * self._bytes_per_second) // 2 * 2
            for start in range(0, len(self._audio), frame):
                self._quietly(self._ws.send, bytes(self._audio[start : start + frame]))
            if self._ended:
                self._quietly(self._ws.send, json.dumps({"event": "end"}))

    @staticmethod
    def _quietly(call: Any, *args: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed, OSError):
            call(*args)

    def close(self) -> None:
        """Close the connection (the service drops the session)."""
        self._quietly(self._ws.close)

    def __enter__(self) -> LiveTranscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raise_error(event: dict[str, Any]) -> dict[str, Any]:
    if "error" in event:
        detail = event["error"]
        kind = ERROR_BY_TYPE.get(detail.get("type"), StreamError)
        raise kind(str(detail.get("message")), code=detail.get("code"))
    return event
