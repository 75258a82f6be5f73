"""OpenAI Realtime API, transcription subset, on top of a live session.

Client events: ``session.update`` (or ``transcription_session.update``: language, turn detection),
``input_audio_buffer.append`` (base64 pcm16, 24 kHz mono), ``input_audio_buffer.commit`` and
``.clear``. Server events: ``session.created``/``.updated``, ``input_audio_buffer.speech_started``/
``.speech_stopped`` (server VAD), ``input_audio_buffer.committed``/``.cleared``,
``conversation.item.input_audio_transcription.delta``/``.completed`` and ``error``.
With server VAD (the default) utterances are committed at pauses; with ``turn_detection: null``
only ``input_audio_buffer.commit`` ends one.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from asr_service.live import LiveSession
from common.errors import BadRequest

SAMPLE_RATE = 24000
_event_ids = itertools.count(1)


class RealtimeAdapter:
    """Translates between Realtime events and one :class:`LiveSession`."""

    def __init__(self, session: LiveSession, send: Callable[[dict[str, Any]], None], model: str) -> None:
        self.session = session
        session.speech_events = True  # server VAD is on until a session.update turns it off
        session.every_final = True  # every committed item gets its transcript, empty if no words were heard
        self._send = send
        self._model = model
        self._items = itertools.count(1)
        self._item = self._new_item()
        self._previous_item: str | None = None
        self._awaiting: deque[str] = deque()
        """Items committed at the end of speech whose transcripts are still being decoded, oldest first."""
        self._sent_text = ""
        self._last_partial = ""

    def start(self) -> None:
        """Send ``session.created``."""
        self._emit("session.created", session=self._describe())

    # -- client -> session --

    def on_client_event(self, event: dict[str, Any]) -> None:
        """Handle one client event.

        Raises:
            BadRequest: an unknown type or a malformed event.
        """
        kind = event.get("type")
        if kind in ("session.update", "transcription_session.update"):
            self._update(event.get("session"))
        elif kind == "input_audio_buffer.append":
            audio = event.get("audio")
            if not isinstance(audio, str):
                raise BadRequest("input_audio_buffer.append needs `audio`, base64 pcm16", param="audio")
            try:
                pcm = base64.b64decode(audio, validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest("`audio` is not valid base64", param="audio", code="invalid_audio") from None
            self.session.feed(pcm)
        elif kind == "input_audio_buffer.commit":
            item = self._item
            if not self.session.commit():
                self._committed(item)
                self._emit(
                    "conversation.item.input_audio_transcription.completed",
                    item_id=item,
                    content_index=0,
                    transcript="",
                )
                self._next_item()
        elif kind == "input_audio_buffer.clear":
            self.session.clear()
            self._sent_text = self._last_partial = ""
            self._emit("input_audio_buffer.cleared")
        else:
            raise BadRequest(f"unsupported event type {str(kind)[:60]!r}", param="type", code="unknown_event")

    def _update(self, config: Any) -> None:
        if not isinstance(config, dict):
            raise BadRequest("session.update needs a `session` object", param="session")
        audio_input = (config.get("audio") or {}).get("input") or {}
        transcription = audio_input.get("transcription") or config.get("input_audio_transcription") or {}
        language = transcription.get("language") if isinstance(transcription, dict) else None
        if language in ("", "auto"):  # back to detection per utterance
            self.session.language = None
        elif language is not None:
            if not isinstance(language, str) or not language.isalpha() or len(language) > 3:
                raise BadRequest("transcription.language must be an ISO 639-1 code", param="language")
            self.session.language = language.lower()
        turn = audio_input["turn_detection"] if "turn_detection" in audio_input else config.get("turn_detection", {})
        self.session.auto_end = turn is not None
        self.session.speech_events = turn is not None  # server VAD's events; none in push-to-talk
        self._emit("session.updated", session=self._describe())

    # -- session -> client --

    def on_session_event(self, event: dict[str, Any]) -> None:
        """Translate one live-session event into Realtime events."""
        if "error" in event:
            self._emit("error", error={**event["error"], "event_id": None})
        elif event.get("event") == "going_away":
            self._emit(
                "error",
                error={
                    "type": "server_error",
                    "code": "going_away",
                    "message": event["reason"],
                    "resume_from_ms": _ms(event["resume_from"]),
                    "event_id": None,
                },
            )
        elif event.get("event") == "speech_started":
            self._emit("input_audio_buffer.speech_started", audio_start_ms=_ms(event["start"]), item_id=self._item)
        elif event.get("event") == "speech_stopped":
            # committed at once, as OpenAI's server VAD does; the transcript follows when the final is decoded
            self._emit("input_audio_buffer.speech_stopped", audio_end_ms=_ms(event["end"]), item_id=self._item)
            self._committed(self._item)
            self._awaiting.append(self._item)
            self._next_item()
        elif "partial_text" in event:
            # deltas only add: send what two partials in a row agree on, so a word Whisper revises later
            # was not sent yet (sending each whole partial, one revision stopped every later delta)
            text = _agreed(self._last_partial, event["partial_text"])
            self._last_partial = event["partial_text"]
            if text.startswith(self._sent_text) and len(text) > len(self._sent_text):
                delta, self._sent_text = text[len(self._sent_text) :], text
                self._emit(
                    "conversation.item.input_audio_transcription.delta",
                    item_id=self._item,
                    content_index=0,
                    delta=delta,
                )
        elif event.get("final"):
            if self._awaiting:
                item = self._awaiting.popleft()
            else:  # ended without voice activity events (a manual commit, or the end of the stream)
                item = self._item
                self._committed(item)
                self._next_item()
            self._emit(
                "conversation.item.input_audio_transcription.completed",
                item_id=item,
                content_index=0,
                transcript=event["text"],
            )

    def _committed(self, item: str) -> None:
        self._emit("input_audio_buffer.committed", item_id=item, previous_item_id=self._previous_item)

    def _next_item(self) -> None:
        self._previous_item, self._item = self._item, self._new_item()
        self._sent_text = self._last_partial = ""

    def _new_item(self) -> str:
        return f"item_{self.session.id}_{next(self._items)}"

    def _describe(self) -> dict[str, Any]:
        return {
            "id": self.session.id,
            "object": "realtime.transcription_session",
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                    "transcription": {"model": self._model, "language": self.session.language},
                    "turn_detection": {"type": "server_vad"} if self.session.auto_end else None,
                }
            },
        }

    def _emit(self, kind: str, **fields: Any) -> None:
        self._send({"type": kind, "event_id": f"event_{next(_event_ids)}", **fields})


def _agreed(before: str, now: str) -> str:
    """The start two partials share, ending at a word boundary (any character, in unspaced scripts)."""
    size = 0
    for a, b in zip(before, now, strict=False):
        if a != b:
            break
        size += 1
    if size == len(now) or " " not in now or (size < len(now) and now[size] == " "):
        return now[:size]
    return now[: now.rfind(" ", 0, size) + 1]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
