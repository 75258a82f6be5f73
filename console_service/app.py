"""Routes of the voice console: the page (static files, no build step) and where the services are."""

from __future__ import annotations

from flask import Response, jsonify, request, send_from_directory
from pydantic import BaseModel

from common.app import app_factory, current_engine
from common.openapi import ApiBlueprint
from console_service.agent_routes import agent_routes
from console_service.engine import STATIC_DIR, ConsoleEngine
from console_service.settings import ConsoleSettings

DESCRIPTION = (
    "A browser page to talk to the suite, and the voice agent it talks through: ws://HOST:7200/v1/realtime "
    "holds spoken conversations over OpenAI's Realtime protocol (GA events; beta with OpenAI-Beta: realtime=v1), "
    "composing the ASR, LLM and TTS services (live transcript, streamed answer spoken clause by clause, "
    "server-side barge-in). The page's status strip, style list and embeddings panel call the services directly "
    "(CORS). WebSocket routes are not part of this OpenAPI document; see docs/console.md."
)

routes = ApiBlueprint("console", __name__)


class ConsoleConfig(BaseModel):
    """Where the page finds each service."""

    services: dict[str, str]


@routes.api(
    "/",
    summary="The voice console page",
    response_content_type="text/html",
    response_schema={"type": "string"},
    errors=(),
    open=True,
    tags=("console",),
)
def index() -> Response:
    """The page (``static/index.html``)."""
    response = send_from_directory(STATIC_DIR, "index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@routes.api(
    "/assets/<path:name>",
    summary="The page's files: ES modules, CSS, the audio worklet",
    response_content_type="text/javascript",
    response_schema={"type": "string"},
    errors=(404,),
    open=True,
    tags=("console",),
)
def asset(name: str) -> Response:
    """One file of ``static/`` as it is (open: a page cannot send the key for its own scripts)."""
    response = send_from_directory(STATIC_DIR, name)
    response.headers["Cache-Control"] = "no-cache"
    return response


@routes.api(
    "/config.json",
    summary="The services' public URLs for the page",
    response=ConsoleConfig,
    errors=(),
    open=True,
    tags=("console",),
)
def config() -> Response:
    """``{"services": {"asr": url, "llm": url, "tts": url, "embedding": url}}``; unset URLs use the page's host."""
    urls = current_engine(ConsoleEngine).service_urls(request.host.rsplit(":", 1)[0].strip("[]"))
    return jsonify(ConsoleConfig(services=urls).model_dump())


create_app = app_factory(ConsoleSettings, ConsoleEngine, [routes, agent_routes], DESCRIPTION)
