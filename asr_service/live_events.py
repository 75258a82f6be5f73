"""What a live session tells its client: the event queue, the finals so far, and the end."""

from __future__ import annotations

import queue
import threading
from typing import Any

from asr_service.live_jobs import seconds
from common.errors import ApiError

UNSPACED_LANGUAGES = ("zh", "ja", "yue")
"""Languages whose finals are joined without a space."""


class SessionEvents:
    """The events of one live session, in order, as dicts; see :class:`asr_service.live.LiveSession`."""

    def __init__(self) -> None:
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self.done = threading.Event()
        """Set once ``done`` or an error event has been queued."""
        self.finals: list[str] = []
        self.speech = False
        """Announce utterances (``speech_started`` / ``speech_stopped``)."""
        self.every_final = False
        """Queue a final for every transcribed utterance, even one the model heard no words in."""

    def partial(self, text: str, start: int, end: int) -> None:
        """A partial text of the open utterance (sample positions)."""
        self.queue.put({"partial_text": text, "start": seconds(start), "end": seconds(end)})

    def final(self, text: str, start: int, end: int, language: str | None) -> None:
        """The final text of one utterance; one with no words only with :attr:`every_final`."""
        if not text and not self.every_final:
            return
        if text:
            self.finals.append(text)
        self.queue.put(
            {"text": text, "start": seconds(start), "end": seconds(end), "final": True, "language": language}
        )

    def speech_started(self, start: int) -> None:
        """Voice activity opened an utterance at ``start``."""
        if self.speech:
            self.queue.put({"event": "speech_started", "start": seconds(start)})

    def speech_stopped(self, end: int) -> None:
        """The open utterance ended at ``end`` (its final follows, if it had words)."""
        if self.speech:
            self.queue.put({"event": "speech_stopped", "end": seconds(end)})

    def finished(self, language: str | None, duration_samples: int) -> None:
        """``done`` with every final joined; once."""
        if self.done.is_set():
            return
        separator = "" if language in UNSPACED_LANGUAGES else " "
        text = separator.join(self.finals)
        self.queue.put({"event": "done", "text": text, "duration": seconds(duration_samples)})
        self.done.set()

    def going_away(self, resume_from: int) -> None:
        """The service is going away; audio from ``resume_from`` on is not transcribed. Nothing follows."""
        if self.done.is_set():
            return
        self.queue.put(
            {
                "event": "going_away",
                "resume_from": seconds(resume_from),
                "reason": "the service is restarting: reconnect and send the audio from resume_from on again",
            }
        )
        self.done.set()

    def failed(self, error: ApiError) -> None:
        """An error event; nothing follows it."""
        self.queue.put({"error": {"message": error.message, "type": error.type, "code": error.code}})
        self.done.set()
