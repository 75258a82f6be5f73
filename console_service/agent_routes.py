"""The voice agent's route: ``ws://HOST:7200/v1/realtime``, OpenAI's Realtime protocol (conversation mode).

The route moves frames: client JSON events into the session, the session's events out. A bad event
gets an ``error`` event naming it and the session goes on; a lost client ends the session at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import request

from common.app import current_engine, service_context
from common.errors import ApiError, BadRequest, Overloaded, Unauthorized
from common.openapi import ApiBlueprint
from common.websocket import Socket, authorized, json_object, websocket_route
from console_service.agent import AgentSession
from console_service.engine import ConsoleEngine

POLL_S = 0.1
SERVICE_RESTART = 1012
CLOSE_UPSTREAM = 1011
MAX_EVENT_BYTES = 32 * 1024 * 1024
"""Frames over this are refused by the WebSocket library (close 1009); appends are bounded lower, by
``agent.max_append_bytes``, with an error event."""

agent_routes = ApiBlueprint("console_agent", __name__)


@websocket_route(agent_routes, "/v1/realtime", subprotocols=("realtime",), max_message_bytes=MAX_EVENT_BYTES)
def realtime(socket: Socket) -> None:
    """A spoken conversation over OpenAI's Realtime protocol (GA; beta with ``OpenAI-Beta: realtime=v1``)."""
    engine = current_engine(ConsoleEngine)
    key = service_context().settings.server.api_key
    if not authorized(key.get_secret_value() if key is not None else None):
        socket.fail(Unauthorized())
        return
    slots = engine.agent_slots
    if slots is None or not slots.acquire(blocking=False):
        limit = engine.settings.agent.max_sessions
        socket.fail(Overloaded(f"the agent holds {limit} conversations already; try again later"))
        return
    send_lock = threading.Lock()

    def send(event: dict[str, Any]) -> None:
        with send_lock:
            socket.send_json(event)

    beta = "realtime=v1" in request.headers.get("OpenAI-Beta", "")
    session = AgentSession(engine.settings.agent, engine.agent_services(), send, beta=beta)
    try:
        session.start()
        _serve(socket, session, send)
    except ApiError as error:
        socket.fail(error)
    finally:
        session.close()
        slots.release()


def _serve(socket: Socket, session: AgentSession, send: Any) -> None:
    idle_limit = session.settings.idle_timeout_s
    last_event = time.monotonic()
    while not session.ended.is_set():
        message = socket.receive(timeout=POLL_S)
        if message is None:
            if time.monotonic() - last_event > idle_limit:
                socket.fail(BadRequest(f"no event for {idle_limit:.0f} s; closing", code="idle_timeout"))
                return
            continue
        last_event = time.monotonic()
        event: dict[str, Any] = {}
        try:
            if isinstance(message, bytes):
                raise BadRequest(
                    "binary frames are not part of this protocol; send JSON events", code="unexpected_binary"
                )
            event = json_object(message)
            session.on_client_event(event)
        except ApiError as error:
            client_event = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            body = {"message": error.message, "type": error.type, "code": error.code, "param": error.param}
            send(
                {
                    "type": "error",
                    "event_id": f"event_error_{time.monotonic_ns()}",
                    "error": {**body, "event_id": client_event},
                }
            )
    if session.end_reason:
        code = SERVICE_RESTART if "restarting" in session.end_reason else CLOSE_UPSTREAM
        send(
            {
                "type": "error",
                "event_id": f"event_error_{time.monotonic_ns()}",
                "error": {
                    "type": "server_error",
                    "code": "upstream_closed",
                    "message": session.end_reason,
                    "event_id": None,
                },
            }
        )
        socket.close(code, session.end_reason[:120])
