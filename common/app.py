"""The app factory every service uses: errors, request ids, auth, size limits, probes, metrics, OpenAPI."""

from __future__ import annotations

import contextlib
import hmac
import io
import logging
import re
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any, Literal, TypeVar, cast

from flask import Flask, Request, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ConfigDict
from werkzeug.exceptions import HTTPException

from common.cors import install_cors
from common.errors import ApiError, PayloadTooLarge, Unauthorized, error_body
from common.jsonio import use_orjson
from common.lifecycle import ModelEngine
from common.log import configure_logging
from common.metrics import ServiceMetrics
from common.openapi import ApiBlueprint, OpenAPIDocument
from common.settings import ServiceSettings

log = logging.getLogger("suite.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# An unread request body makes the kernel reset the connection when the server closes it, which can
# destroy the 413 answer before the client reads it; discard up to this much first.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
_HTTP_ERROR_TYPES = {404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error"}


@dataclass
class ServiceContext:
    """What the kit keeps per app, reachable as ``current_app.extensions["suite"]``."""

    name: str
    settings: ServiceSettings
    engine: ModelEngine
    metrics: ServiceMetrics
    openapi: OpenAPIDocument
    open_endpoints: frozenset[str]
    """Endpoints whose operation is declared ``open=True``: reachable without the API key."""


EngineT = TypeVar("EngineT", bound=ModelEngine)
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def service_context() -> ServiceContext:
    """The current app's :class:`ServiceContext`."""
    return current_app.extensions["suite"]


def current_engine(engine_class: type[EngineT]) -> EngineT:
    """The current app's engine, typed as the service's engine class (``current_engine(AsrEngine)``)."""
    return cast(EngineT, service_context().engine)


class HealthResponse(BaseModel):
    """``status`` is ``ok`` when ready, else ``loading``/``failed``/``degraded``; plus model facts."""

    model_config = ConfigDict(extra="allow")
    status: str


class ModelCard(BaseModel):
    """One served model in ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    aliases: list[str] = []


class ModelList(BaseModel):
    """``GET /v1/models`` (OpenAI shape)."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class ProbeResponse(BaseModel):
    """Liveness/readiness answer."""

    status: str


class SuiteRequest(Request):
    """Keeps uploaded files in memory (bounded by ``max_body_bytes``): no temp file can outlive a request."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()


kit = ApiBlueprint("kit", __name__)


@kit.api(
    "/health",
    summary="Service health and the models it serves",
    response=HealthResponse,
    errors=(),
    open=True,
    tags=("probes",),
)
def health() -> tuple[Response, int]:
    """Seed-compatible health: ``{"status": "ok", ...}`` once models are loaded."""
    engine = service_context().engine
    status = engine.status
    body: dict[str, Any] = {"status": "ok" if status == "ready" else status, **engine.describe()}
    if engine.load_error:
        body["error"] = engine.load_error
    return jsonify(body), 200 if status == "ready" else 503


@kit.api(
    "/healthz", summary="Liveness: the process answers", response=ProbeResponse, errors=(), open=True, tags=("probes",)
)
def healthz() -> Response:
    """Always 200 while the process serves HTTP."""
    return jsonify(status="alive")


@kit.api(
    "/readyz",
    summary="Readiness: 200 once models are loaded and workers alive",
    response=ProbeResponse,
    errors=(),
    open=True,
    tags=("probes",),
)
def readyz() -> tuple[Response, int]:
    """200 when the engine can serve, else 503 with the reason."""
    status = service_context().engine.status
    return jsonify(status=status), 200 if status == "ready" else 503


@kit.api(
    "/metrics",
    summary="Prometheus metrics",
    response_content_type="text/plain",
    response_schema={"type": "string"},
    errors=(),
    tags=("probes",),
)
def metrics() -> Response:
    """Prometheus text format."""
    return Response(service_context().metrics.render(), mimetype="text/plain; version=0.0.4")


@kit.api("/openapi.json", summary="This document", response_schema={"type": "object"}, errors=(), tags=("probes",))
def openapi() -> Response:
    """The OpenAPI 3.1 description of every route."""
    ctx = service_context()
    return jsonify(ctx.openapi.render(auth_enabled=ctx.settings.server.api_key is not None))


@kit.api("/v1/models", summary="Served models (OpenAI shape)", response=ModelList, errors=(), tags=("openai",))
def list_models() -> Response:
    """Every model the engine serves, with its aliases."""
    created = int(time.time())
    served = service_context().engine.served_models()
    cards = [
        ModelCard(id=model, created=created, owned_by="local", aliases=aliases) for model, aliases in served.items()
    ]
    return jsonify(ModelList(data=cards).model_dump())


def app_factory(
    settings_class: type[SettingsT],
    engine_class: Callable[[SettingsT], ModelEngine],
    blueprints: Iterable[ApiBlueprint],
    description: str = "",
) -> Callable[..., Flask]:
    """The ``create_app(settings=None, engine=None)`` of a service.

    The returned function builds the app around ``settings`` (default: ``settings_class.load()``, YAML
    + env) and ``engine`` (default: a new ``engine_class(settings)`` that starts loading in the
    background; pass one to share it between apps, e.g. in tests, which leaves it unstarted).
    """
    blueprints = tuple(blueprints)

    def create_app(settings: SettingsT | None = None, engine: ModelEngine | None = None) -> Flask:
        settings = settings or settings_class.load()
        return create_service_app(
            settings_class.service_name,
            settings,
            engine or engine_class(settings),
            blueprints,
            description=description,
            start_engine=engine is None,
        )

    create_app.__doc__ = f"Build the {settings_class.service_name} app (see :func:`common.app.app_factory`)."
    return create_app


def create_service_app(
    name: str,
    settings: ServiceSettings,
    engine: ModelEngine,
    blueprints: Iterable[ApiBlueprint],
    *,
    description: str = "",
    version: str = "0.1.0",
    start_engine: bool = True,
) -> Flask:
    """Build a service's Flask app around an engine and its route blueprints.

    Args:
        name: service name, used in metrics and logs.
        settings: the service's settings (``settings.server`` drives the kit).
        engine: the model engine; its queues are exported as metrics.
        blueprints: the service's routes.
        start_engine: report the engine's model calls to this app's metrics and start loading
            in the background (False for an engine shared between apps, e.g. in tests).
    """
    configure_logging(settings.server.log_level)
    app = Flask(name)
    app.request_class = SuiteRequest
    use_orjson(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    document = OpenAPIDocument(title=f"{name} service", version=version, description=description)
    all_blueprints = (kit, *blueprints)
    for blueprint in all_blueprints:
        app.register_blueprint(blueprint)
        document.operations.extend(blueprint.operations)
    open_endpoints = frozenset(op.endpoint for op in document.operations if op.open) | {
        endpoint for blueprint in all_blueprints for endpoint in blueprint.websocket_endpoints
    }
    app.extensions["suite"] = ServiceContext(name, settings, engine, ServiceMetrics(name), document, open_endpoints)
    app.before_request(_start_request)
    app.after_request(_finish_request)
    install_cors(app, settings.server.cors_origins)
    app.teardown_request(_end_request)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled_error)
    metrics = app.extensions["suite"].metrics
    for queue, depth in engine.queue_depths().items():
        metrics.track_queue(queue, depth)
    for queue, in_use in engine.models_in_use().items():
        metrics.track_in_use(queue, in_use)
    if start_engine:
        engine.observer = metrics
        engine.start()
    return app


def _start_request() -> None:
    g.started = time.perf_counter()
    context = service_context()
    context.metrics.in_progress.labels(context.name).inc()
    _disable_nagle()
    settings = context.settings.server
    if request.environ.get("wsgi.input_terminated") and "CONTENT_LENGTH" not in request.environ:
        _buffer_chunked_body(settings.max_body_bytes)
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    if settings.api_key is not None and request.endpoint not in context.open_endpoints:
        _check_api_key(settings.api_key.get_secret_value())
    length = request.content_length
    if length is not None and length > settings.max_body_bytes:
        discard_request_body()
        raise PayloadTooLarge(f"request body is {length} bytes; the limit is {settings.max_body_bytes}")


def _disable_nagle() -> None:
    """Send small writes (stream chunks, a response body after its headers) at once.

    gunicorn leaves Nagle's algorithm on, so each small write after the first waits for the
    peer's delayed ACK (tens of ms on Linux): streamed tokens came out at ~20/s instead of
    the model's speed. asyncio servers (uvicorn, llama.cpp's own) set TCP_NODELAY by default.
    """
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # not TCP (a unix socket) or already closed
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def client_gone_check() -> Callable[[], bool] | None:
    """For the current request under gunicorn: a check whether its client has closed the connection.

    The check peeks at the socket without blocking: end of stream means the client left (a client
    that only half-closes looks the same). None where there is no plain socket to look at (the test
    client, TLS). Call it after the request body has been read.
    """
    sock = request.environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket) or isinstance(sock, ssl.SSLSocket):
        return None

    def gone() -> bool:
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    return gone


def _buffer_chunked_body(limit: int) -> None:
    """Read a chunked body into memory (at most ``limit`` bytes) so it parses like a sized one.

    Werkzeug would cut a chunked body at ``MAX_CONTENT_LENGTH`` without saying so.

    Raises:
        PayloadTooLarge: the body is over the limit.
    """
    stream = request.environ["wsgi.input"]
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(65536):
        total += len(chunk)
        if total > limit:
            discard_request_body()
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    request.environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
    request.environ["CONTENT_LENGTH"] = str(total)
    del request.environ["wsgi.input_terminated"]


def discard_request_body() -> None:
    """Read and drop what is left of the request body (bounded by ``DRAIN_LIMIT_BYTES``)."""
    stream = request.environ.get("wsgi.input")
    if stream is None:
        return
    remaining = DRAIN_LIMIT_BYTES
    try:
        while remaining > 0:
            chunk = stream.read(min(65536, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
    except (OSError, ValueError):
        return


def bearer_token() -> str | None:
    """The token of the request's ``Authorization: Bearer`` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def key_matches(offered: str, expected: str) -> bool:
    """Whether ``offered`` is the API key, in time independent of where they differ (equal-type bytes)."""
    return hmac.compare_digest(offered.encode(), expected.encode())


def _check_api_key(expected: str) -> None:
    token = bearer_token()
    if token is None or not key_matches(token, expected):
        raise Unauthorized()


def _finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "-")
    rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    started = g.get("started")
    if started is not None:
        service_context().metrics.observe_request(
            rule, request.method, response.status_code, time.perf_counter() - started
        )
    return response


def _end_request(exc: BaseException | None) -> None:
    if g.get("started") is not None:
        context = service_context()
        context.metrics.in_progress.labels(context.name).dec()


def _api_error(exc: ApiError) -> tuple[Response, int, dict[str, str]]:
    if exc.status >= 500:
        log.warning("%s %s -> %d %s", request.method, request.path, exc.status, exc.message)
    return jsonify(exc.to_dict()), exc.status, exc.headers


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    if status == 404:
        message = f"no route for {request.method} {request.path}"
    elif status == 405:
        message = f"method {request.method} not allowed for {request.path}"
    elif status == 413:
        discard_request_body()
        limit = service_context().settings.server.max_body_bytes
        message = f"request body too large; the limit is {limit} bytes"
    else:
        message = exc.description or exc.name
    code = re.sub(r"[^a-z0-9]+", "_", exc.name.lower()).strip("_")
    response = jsonify(error_body(message, _HTTP_ERROR_TYPES.get(status, "invalid_request_error"), code))
    valid_methods = getattr(exc, "valid_methods", None)
    if status == 405 and valid_methods:
        response.headers["Allow"] = ", ".join(valid_methods)
    return response, status


def _unhandled_error(exc: Exception) -> tuple[Response, int]:
    request_id = g.get("request_id", "-")
    log.exception("unhandled error on %s %s", request.method, request.path)
    body = error_body(
        f"internal error (request id {request_id}); see the service log", "server_error", "internal_error"
    )
    return jsonify(body), 500
