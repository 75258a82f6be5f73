"""The routes every service has: /health, /healthz, /readyz, /metrics, /openapi.json, /v1/models."""

from __future__ import annotations

import time
from typing import Any, Literal

from flask import Response, jsonify
from pydantic import BaseModel, ConfigDict

from common.context import service_context
from common.openapi import ApiBlueprint


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
