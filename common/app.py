"""The app factory every service uses: errors, request ids, auth, size limits, probes, metrics, OpenAPI.

The kit's pieces live beside it: :mod:`common.context` (what an app keeps), :mod:`common.auth` (the
API key), :mod:`common.probes` (the routes every service has), :mod:`common.request_io` (bodies and
connections). The names services import from here stay importable from here.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from common.auth import bearer_token, check_api_key, key_matches
from common.context import ServiceContext, current_engine, service_context
from common.cors import install_cors
from common.errors import ApiError, PayloadTooLarge, error_body
from common.jsonio import use_orjson
from common.lifecycle import ModelEngine
from common.log import configure_logging
from common.metrics import ServiceMetrics
from common.openapi import ApiBlueprint, OpenAPIDocument
from common.probes import kit
from common.request_io import (
    DRAIN_LIMIT_BYTES,
    SuiteRequest,
    buffer_chunked_body,
    client_gone_check,
    disable_nagle,
    discard_request_body,
)
from common.settings import ServiceSettings

__all__ = [
    "DRAIN_LIMIT_BYTES",
    "ServiceContext",
    "app_factory",
    "bearer_token",
    "client_gone_check",
    "create_service_app",
    "current_engine",
    "discard_request_body",
    "key_matches",
    "service_context",
]

log = logging.getLogger("suite.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_HTTP_ERROR_TYPES = {404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error"}
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


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
    disable_nagle()
    settings = context.settings.server
    if request.environ.get("wsgi.input_terminated") and "CONTENT_LENGTH" not in request.environ:
        buffer_chunked_body(settings.max_body_bytes)
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    if settings.api_key is not None and request.endpoint not in context.open_endpoints:
        check_api_key(settings.api_key.get_secret_value())
    length = request.content_length
    if length is not None and length > settings.max_body_bytes:
        discard_request_body()
        raise PayloadTooLarge(f"request body is {length} bytes; the limit is {settings.max_body_bytes}")


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
