"""HTTP layer of the LLM service: validate, call the engine, serialise (JSON, NDJSON, SSE). No model code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import BaseModel

from common.app import app_factory, client_gone_check, current_engine
from common.openapi import ApiBlueprint
from common.streaming import ndjson_response, sse_response
from common.validation import json_body
from llm_service import schemas
from llm_service.backends import SAMPLING_FIELDS, ChatParams
from llm_service.engine import LlmEngine
from llm_service.settings import LlmSettings
from llm_service.slots import SlotMetrics

DESCRIPTION = (
    "LLM chat. Seed routes `/api/chat` and `/api/chat/stream` (NDJSON), OpenAI "
    "`/v1/chat/completions` (JSON or SSE) and `/v1/models`."
)
ERRORS = (400, 404, 429, 502, 504)
KNOBS = tuple(name for name in SAMPLING_FIELDS if name != "stop")  # stop also takes a bare string

routes = ApiBlueprint("llm", __name__)


def _params(body: schemas.ChatRequest) -> ChatParams:
    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    knobs = {name: _plain(getattr(body, name)) for name in KNOBS}
    return current_engine(LlmEngine).params(
        messages,
        model=body.model,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=stop,
        extra=dict(body.model_extra or {}),
        **knobs,
    )


def _plain(value: Any) -> Any:
    """Typed for validation, plain dicts for backends."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value


@routes.api(
    "/api/chat",
    methods=["POST"],
    summary="Chat, whole answer (seed route)",
    request=schemas.ChatRequest,
    response=schemas.ChatResponse,
    errors=ERRORS,
    tags=("seed",),
)
def chat() -> Response:
    """``{"content", "model", "raw"}``; ``raw`` is the OpenAI ``chat.completion``."""
    engine = current_engine(LlmEngine)
    params = _params(json_body(schemas.ChatRequest))
    completion = engine.complete(params, client_gone_check())
    message = completion["choices"][0]["message"] if completion.get("choices") else {}
    return jsonify(
        schemas.ChatResponse(content=message.get("content"), model=completion["model"], raw=completion).model_dump()
    )


@routes.api(
    "/api/chat/stream",
    methods=["POST"],
    summary="Chat, streamed as NDJSON deltas (seed route)",
    request=schemas.ChatRequest,
    response=schemas.StreamLine,
    response_content_type="application/x-ndjson",
    errors=ERRORS,
    tags=("seed",),
)
def chat_stream() -> Response:
    """``{"delta": ...}`` per chunk, then ``{"event": "done", "finish_reason", "usage"}``."""
    params = _params(json_body(schemas.ChatRequest))
    chunks = current_engine(LlmEngine).stream(params, include_usage=True)
    return ndjson_response(_seed_lines(chunks), close=chunks.close)


def _seed_lines(chunks: Any) -> Iterator[dict[str, Any]]:
    finish_reason = None
    usage = None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            finish_reason = choice.get("finish_reason") or finish_reason
            delta = (choice.get("delta") or {}).get("content")
            if delta:
                yield {"delta": delta}
    yield {"event": "done", "finish_reason": finish_reason, "usage": usage}


@routes.api(
    "/v1/chat/completions",
    methods=["POST"],
    summary="OpenAI-compatible chat completions (JSON or SSE)",
    request=schemas.ChatRequest,
    response=schemas.ChatCompletion,
    errors=ERRORS,
    tags=("openai",),
)
def chat_completions() -> Response:
    """OpenAI's chat completions; ``stream=true`` sends ``chat.completion.chunk`` events and ``[DONE]``."""
    body = json_body(schemas.ChatRequest)
    params = _params(body)
    engine = current_engine(LlmEngine)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = engine.stream(params, include_usage=include_usage)
        return sse_response(
            chunks,
            lambda message, code: {"error": {"message": message, "code": code, "type": "server_error"}},
            close=chunks.close,
            done_marker=True,
        )
    return jsonify(engine.complete(params, client_gone_check()))


_build_app = app_factory(LlmSettings, LlmEngine, [routes], DESCRIPTION)


def create_app(settings: LlmSettings | None = None, engine: LlmEngine | None = None) -> Flask:
    """Build the LLM app (the kit's factory) and export its slots as metrics."""
    app = _build_app(settings, engine)
    context = app.extensions["suite"]
    context.metrics.registry.register(SlotMetrics("llm", context.engine.slot_use))
    return app
