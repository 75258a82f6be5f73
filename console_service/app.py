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
    "A browser page to talk to the suite: live transcript, streamed answer spoken clause by clause, "
    "barge-in, TTS styles, an embeddings panel. The page calls the other services directly (CORS). "
    "The voice agent at ws://HOST:7200/v1/realtime holds spoken conversations over OpenAI's Realtime protocol."
)

# The page's files are served as they are from static/ (ES modules, CSS, the audio worklet).
routes = ApiBlueprint("console", __name__, static_folder=str(STATIC_DIR), static_url_path="/assets")


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
