"""The voice agent: one OpenAI Realtime conversation, composed of the ASR, LLM and TTS services.

The session owns the turn state (STYLE 13): the conversation's items, the one reply in progress, and
the ASR link. Everything it sends goes through :meth:`AgentSession._send` under one lock, so that a
reply's events stop at its ``response.done`` whichever thread ends it (the reply's own, a barge-in on
the ASR's reader thread, or a ``response.cancel`` on the client's).

Invariants (tested): at most one reply in progress; every ``response.created`` gets exactly one
``response.done``; no event of a reply after its ``response.done``.
"""

from __future__ import annotations

import base64
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from common.errors import ApiError, BadRequest
from console_service.agent_conversation import Conversation, Item, new_id, typed_item
from console_service.agent_protocol import (
    AgentConfig,
    Dialect,
    apply_update,
    decode_audio,
    output_tokens,
    transcription_update,
)
from console_service.agent_response import Reply, ReplyPlan, content_part, response_object
from console_service.settings import AgentSettings
from core import LLMClient, TTSClient

_event_ids = itertools.count(1)
FORWARD_BYTES = 256 * 1024
"""Audio per append event sent on to the ASR."""
_FORWARDED = {
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.cleared",
    "conversation.item.input_audio_transcription.delta",
}


class Ear(Protocol):
    """A transcription session (:class:`console_service.agent_asr.AsrLink` in service)."""

    def send(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


EventHandler = Callable[[dict[str, Any]], None]


@dataclass
class AgentServices:
    """What a session talks to: the ASR (one transcription session each), the LLM and TTS clients (shared)."""

    open_asr: Callable[[EventHandler, Callable[[str], None]], Ear]
    """Open a transcription session that reports to (on_event, on_closed)."""
    llm: LLMClient
    tts: TTSClient
    model: str
    voices: Callable[[], set[str]]
    """Voice names the TTS knows (empty when it cannot be asked)."""


class AgentSession:
    """One conversation: client events in (:meth:`on_client_event`), Realtime events out through ``send``."""

    def __init__(
        self, settings: AgentSettings, services: AgentServices, send: Callable[[dict[str, Any]], None], *, beta: bool
    ) -> None:
        self.id = new_id("sess")
        self.settings = settings
        self.config = AgentConfig(
            settings.instructions, settings.voice, settings.max_output_tokens, settings.temperature
        )
        self.dialect = Dialect(beta)
        self.conversation = Conversation()
        self.ended = threading.Event()
        """Set when the session cannot go on (the client left, or the ASR link ended)."""
        self.end_reason = ""
        self._services = services
        self._send_raw = send
        self._lock = threading.RLock()
        self._transcribed = threading.Condition(self._lock)
        self._reply: Reply | None = None
        self._threads: list[threading.Thread] = []
        self._asr: Ear | None = None

    # -- lifetime --

    def start(self) -> None:
        """Open the ASR session and send ``session.created``.

        Raises:
            ServiceUnavailable: the ASR service cannot be reached.
        """
        self._asr = self._services.open_asr(self._on_asr_event, self._asr_closed)
        self._configure_asr()
        self._emit("session.created", session=self._describe())

    def close(self) -> None:
        """The client is gone: stop the reply (nothing more is sent) and the ASR session."""
        self.ended.set()
        with self._lock:
            if self._reply is not None:
                self._reply.ended.set()
                self._reply = None
            self._transcribed.notify_all()
        if self._asr is not None:
            self._asr.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def busy(self) -> bool:
        """Whether a reply is in progress or its threads are still finishing."""
        return self._reply is not None or any(thread.is_alive() for thread in self._threads)

    # -- client events --

    def on_client_event(self, event: dict[str, Any]) -> None:
        """Handle one client event.

        Raises:
            ApiError: an unknown type or a malformed event (the route sends an ``error`` and goes on).
        """
        kind = event.get("type")
        handler = self._handlers().get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise BadRequest(f"unsupported event type {str(kind)[:60]!r}", param="type", code="unknown_event")
        handler(event)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {
            "session.update": self._update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": lambda _: self._asr_send({"type": "input_audio_buffer.commit"}),
            "input_audio_buffer.clear": lambda _: self._asr_send({"type": "input_audio_buffer.clear"}),
            "conversation.item.create": self._create_item,
            "conversation.item.delete": self._delete_item,
            "conversation.item.truncate": self._truncate,
            "conversation.item.retrieve": self._retrieve,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
        }

    def _update(self, event: dict[str, Any]) -> None:
        config = apply_update(self.config, event.get("session"), self.settings.max_output_tokens)
        voices = self._services.voices()
        if voices and config.voice not in voices:
            raise BadRequest(f"unknown voice {config.voice!r}; available: {', '.join(sorted(voices))}", param="voice")
        with self._lock:
            self.config = config
        self._configure_asr()
        self._emit("session.updated", session=self._describe())

    def _append(self, event: dict[str, Any]) -> None:
        pcm = decode_audio(event.get("audio"), self.settings.max_append_bytes)
        if len(pcm) <= FORWARD_BYTES:
            self._asr_send({"type": "input_audio_buffer.append", "audio": event["audio"]})
            return
        for start in range(0, len(pcm), FORWARD_BYTES):  # the ASR takes smaller events than a client may send
            piece = base64.b64encode(pcm[start : start + FORWARD_BYTES]).decode("ascii")
            self._asr_send({"type": "input_audio_buffer.append", "audio": piece})

    def _create_item(self, event: dict[str, Any]) -> None:
        item = typed_item(event.get("item"))
        with self._lock:
            previous = self.conversation.add(item, event.get("previous_item_id"))
            self._item_added(item, previous)

    def _delete_item(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.conversation.delete(event.get("item_id"))
            self._emit("conversation.item.deleted", item_id=event["item_id"])

    def _truncate(self, event: dict[str, Any]) -> None:
        end_ms = event.get("audio_end_ms")
        if not isinstance(end_ms, int) or isinstance(end_ms, bool) or end_ms < 0:
            raise BadRequest("audio_end_ms must be a whole number of milliseconds", param="audio_end_ms")
        with self._lock:
            item = self.conversation.find(event.get("item_id"))
            if self._reply is not None and self._reply.item is item:
                self._end_reply(self._reply, "cancelled", {"type": "cancelled", "reason": "client_cancelled"})
            item.truncate(end_ms)
            self._emit("conversation.item.truncated", item_id=item.id, content_index=0, audio_end_ms=end_ms)

    def _retrieve(self, event: dict[str, Any]) -> None:
        with self._lock:
            item = self.conversation.find(event.get("item_id"))
            self._emit("conversation.item.retrieved", item=item.describe(self.dialect.beta))

    def _response_create(self, event: dict[str, Any]) -> None:
        options = event.get("response") or {}
        if not isinstance(options, dict):
            raise BadRequest("response must be an object", param="response")
        config = apply_update(
            self.config, {k: v for k, v in options.items() if k != "turn_detection"}, self.settings.max_output_tokens
        )
        if "max_output_tokens" in options or "max_response_output_tokens" in options:
            config.max_output_tokens = output_tokens(
                options.get("max_output_tokens", options.get("max_response_output_tokens")),
                self.settings.max_output_tokens,
            )
        with self._lock:
            if self._reply is not None:
                raise BadRequest(
                    f"response {self._reply.id} is in progress; cancel it first",
                    code="conversation_already_has_active_response",
                )
            self._start_reply(config)

    def _response_cancel(self, event: dict[str, Any]) -> None:
        with self._lock:
            reply = self._reply
            wanted = event.get("response_id")
            if reply is None or (wanted is not None and wanted != reply.id):
                raise BadRequest("no response in progress to cancel", code="response_cancel_not_active")
            self._end_reply(reply, "cancelled", {"type": "cancelled", "reason": "client_cancelled"})

    # -- ASR events (its reader thread) --

    def _on_asr_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        with self._lock:
            if kind in _FORWARDED:
                self._emit(kind, **_fields(event))
            if kind == "input_audio_buffer.speech_started":
                turn = self.config.turn_detection
                if self._reply is not None and turn is not None and turn.interrupt_response:
                    self._end_reply(self._reply, "cancelled", {"type": "cancelled", "reason": "turn_detected"})
            elif kind == "input_audio_buffer.committed":
                item = Item(event["item_id"], "user", audio=True, text=None)
                previous = self.conversation.add(item)
                self._emit("input_audio_buffer.committed", item_id=item.id, previous_item_id=previous)
                self._item_added(item, previous, done=False)
            elif kind == "conversation.item.input_audio_transcription.completed":
                self._transcribed_turn(event["item_id"], event.get("transcript") or "")
            elif kind == "error":
                error = event.get("error") or {}
                self._emit("error", error={**error, "event_id": None})
                if error.get("code") == "going_away":
                    self._asr_closed("the ASR service is restarting: reconnect to go on")

    def _transcribed_turn(self, item_id: str, transcript: str) -> None:
        try:
            item = self.conversation.find(item_id)
        except ApiError:
            return  # deleted by the client meanwhile
        item.text = transcript
        self._transcribed.notify_all()
        self._emit(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=transcript,
        )
        self._emit("conversation.item.done", item=item.describe(self.dialect.beta))
        turn = self.config.turn_detection
        if transcript.strip() and turn is not None and turn.create_response and self._reply is None:
            self._start_reply(AgentConfig(**self.config.__dict__))

    def _asr_closed(self, reason: str) -> None:
        self.end_reason = reason
        self.ended.set()

    # -- replies --

    def _start_reply(self, config: AgentConfig) -> None:
        plan = ReplyPlan(
            config.audio_out, config.voice, config.max_output_tokens, config.temperature, self.settings.audio_chunk_ms
        )
        reply = Reply(self, plan, self._services.llm, self._services.tts)
        self._reply = reply
        self._emit("response.created", response=response_object(reply, self.id, self.dialect.beta, "in_progress"))
        thread = threading.Thread(target=self._run_reply, args=(reply, config.instructions), name=reply.id, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _run_reply(self, reply: Reply, instructions: str) -> None:
        with self._lock:
            waited = self._transcribed.wait_for(
                lambda: reply.ended.is_set() or not self.conversation.awaiting_transcript(),
                timeout=self.settings.transcript_wait_s,
            )
            if reply.ended.is_set():
                return
            if not waited:
                self._end_reply(
                    reply,
                    "failed",
                    {
                        "type": "failed",
                        "error": {
                            "type": "server_error",
                            "code": "transcript_timeout",
                            "message": "the last turn's transcript did not arrive",
                        },
                    },
                )
                return
            messages = self.conversation.messages(instructions, self.settings.history_tokens)
            previous = self.conversation.add(reply.item)
            item = reply.item.describe(self.dialect.beta)
            self.emit_for(reply, "response.output_item.added", output_index=0, item=item)
            self.emit_for(reply, "conversation.item.added", previous_item_id=previous, item=item)
            self.emit_for(
                reply,
                "response.content_part.added",
                item_id=reply.item.id,
                output_index=0,
                content_index=0,
                part=content_part(reply),
            )
        reply.run(messages)

    def emit_for(self, reply: Reply, kind: str, **fields: Any) -> bool:
        """Send one of ``reply``'s events unless it has ended; False when it has."""
        with self._lock:
            if reply.ended.is_set():
                return False
            return self._emit(kind, response_id=reply.id, **fields)

    def end_reply(self, reply: Reply, status: str, details: dict[str, Any] | None = None) -> None:
        """End ``reply`` with ``status`` (once)."""
        with self._lock:
            self._end_reply(reply, status, details)

    def _end_reply(self, reply: Reply, status: str, details: dict[str, Any] | None) -> None:
        if reply.ended.is_set():
            return
        item = reply.item
        added = any(known is item for known in self.conversation.items)
        if added:
            item.status = "completed" if status == "completed" else "incomplete"
            described = item.describe(self.dialect.beta)
            ids = {"response_id": reply.id, "item_id": item.id, "output_index": 0, "content_index": 0}
            if status in ("completed", "incomplete"):
                if reply.plan.audio:
                    self._emit("response.output_audio.done", **ids)
                    self._emit("response.output_audio_transcript.done", transcript=item.text, **ids)
                else:
                    self._emit("response.output_text.done", text=item.text, **ids)
                self._emit("response.content_part.done", part=content_part(reply), **ids)
            self._emit("response.output_item.done", response_id=reply.id, output_index=0, item=described)
            self._emit("conversation.item.done", item=described)
        if details and details.get("error"):
            self._emit("error", error={**details["error"], "event_id": None})
        reply.ended.set()
        if self._reply is reply:
            self._reply = None
        self._emit(
            "response.done",
            response=response_object(reply, self.id, self.dialect.beta, status, details, [item] if added else []),
        )

    # -- plumbing --

    def _item_added(self, item: Item, previous: str | None, done: bool = True) -> None:
        described = item.describe(self.dialect.beta)
        self._emit("conversation.item.added", previous_item_id=previous, item=described)
        if done:
            self._emit("conversation.item.done", item=described)

    def _configure_asr(self) -> None:
        self._asr_send(transcription_update(self.config))

    def _asr_send(self, event: dict[str, Any]) -> None:
        assert self._asr is not None
        self._asr.send(event)

    def _describe(self) -> dict[str, Any]:
        return self.dialect.describe(self.id, self._services.model, self.config)

    def _emit(self, kind: str, **fields: Any) -> bool:
        name = self.dialect.event_name(kind)
        if name is None or (self.ended.is_set() and kind != "error"):
            return True
        with self._lock:
            try:
                self._send_raw({"type": name, "event_id": f"event_{next(_event_ids)}", **fields})
            except Exception:  # the client is gone: the route's loop ends the session
                self.ended.set()
                return False
        return True


def _fields(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key not in ("type", "event_id")}
