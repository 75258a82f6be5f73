"""WebSocket routes of the ASR service: ``/asr/live`` (ours) and ``/v1/realtime`` (OpenAI's subset).

The routes only move frames and events; the session (``asr_service.live``) does the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import request
from pydantic import BaseModel, Field, field_validator

from asr_service import realtime
from asr_service.engine import AsrEngine
from asr_service.live import LiveSession
from asr_service.schemas import LanguageCode, _auto_is_none
from common.app import current_engine, service_context
from common.errors import ApiError, BadRequest, PayloadTooLarge, Unauthorized
from common.openapi import ApiBlueprint
from common.validation import validate
from common.websocket import Socket, authorized, close_code, json_object, websocket_route

POLL_S = 0.02
"""How often the connection thread checks for new events while no frame arrives."""
SERVICE_RESTART = 1012
"""Close code of a session ended by a drain (RFC 6455 registry: service restart): resume on another replica."""
FINISH_TIMEOUT_S = 120.0
"""After ``end``, the longest wait for the last finals."""

live_routes = ApiBlueprint("asr_live", __name__)


class LiveQuery(BaseModel):
    """Query parameters of ``/asr/live``."""

    language: LanguageCode = None
    sample_rate: int = Field(default=16000, ge=8000, le=48000)
    model: str | None = None

    _language = field_validator("language")(_auto_is_none)


def _open(socket: Socket, *, from_query: bool = True) -> LiveSession | None:
    """Check the key (and the query, for ``/asr/live``), then open a session; on failure send the error."""
    engine = current_engine(AsrEngine)
    key = service_context().settings.server.api_key
    try:
        if not authorized(key.get_secret_value() if key is not None else None):
            raise Unauthorized()
        if not from_query:
            return engine.open_live(sample_rate=realtime.SAMPLE_RATE)
        query = validate(LiveQuery, request.args.to_dict())
        engine.check_model(query.model)
        return engine.open_live(sample_rate=query.sample_rate, language=query.language)
    except ApiError as error:
        socket.fail(error)
        return None


def pump(
    socket: Socket,
    session: LiveSession,
    on_text: Callable[[dict[str, Any]], None],
    send: Callable[[dict[str, Any]], None],
    *,
    binary_audio: bool = True,
) -> None:
    """Move frames into ``session`` and its events out through ``send`` until it is done.

    Text frames are parsed as JSON objects and handed to ``on_text``; binary frames are PCM
    (when ``binary_audio``). Any :class:`ApiError` ends the session with an error event.
    """
    limits = session.limits
    last_audio = time.monotonic()
    finishing_since: float | None = None
    try:
        while True:
            while not session.events.empty():
                send(session.events.get_nowait())
            if session.error is not None:
                socket.close(close_code(session.error.status), session.error.message[:120])
                return
            if session.done.is_set():
                if session.going_away:
                    socket.close(SERVICE_RESTART, "the service is restarting")
                return
            if session.finishing:
                finishing_since = finishing_since or time.monotonic()
                if time.monotonic() - finishing_since > FINISH_TIMEOUT_S:
                    raise ApiError("the last utterance was not decoded in time")
            message = socket.receive(timeout=POLL_S)
            if message is None:
                if not session.finishing and time.monotonic() - last_audio > limits.idle_timeout_s:
                    raise BadRequest(f"no audio for {limits.idle_timeout_s:.0f} s; closing", code="idle_timeout")
                continue
            if isinstance(message, bytes):
                if not binary_audio:
                    raise BadRequest("binary frames are not part of this protocol", code="unexpected_binary")
                if len(message) > limits.max_frame_bytes:
                    raise PayloadTooLarge(f"frame of {len(message)} bytes; the limit is {limits.max_frame_bytes}")
                last_audio = time.monotonic()
                session.feed(message)
            else:
                on_text(json_object(message))
                last_audio = time.monotonic()
    except ApiError as error:
        session.fail(error)
        while not session.events.empty():
            send(session.events.get_nowait())
        socket.close(close_code(error.status), error.message[:120])
    finally:
        session.close()


@websocket_route(live_routes, "/asr/live", max_message_bytes=4 * 1024 * 1024)
def asr_live(socket: Socket) -> None:
    """Live transcription: binary PCM frames in, ``partial_text``/final/``done`` JSON events out."""
    session = _open(socket)
    if session is None:
        return
    socket.send_json(
        {
            "event": "ready",
            "session": session.id,
            "sample_rate": session.sample_rate,
            "model": current_engine(AsrEngine).settings.model_name,
        }
    )

    def on_text(data: dict[str, Any]) -> None:
        if data.get("event") != "end":
            name = str(data.get("event"))[:40]
            raise BadRequest(f'unknown event {name!r}; send {{"event": "end"}} to finish', code="unknown_event")
        session.finish()

    pump(socket, session, on_text, socket.send_json)


@websocket_route(live_routes, "/v1/realtime", subprotocols=("realtime",), max_message_bytes=16 * 1024 * 1024)
def openai_realtime(socket: Socket) -> None:
    """OpenAI Realtime API, transcription subset (24 kHz pcm16 in base64)."""
    session = _open(socket, from_query=False)
    if session is None:
        return
    adapter = realtime.RealtimeAdapter(session, socket.send_json, current_engine(AsrEngine).settings.model_name)
    adapter.start()
    pump(socket, session, adapter.on_client_event, adapter.on_session_event, binary_audio=False)
