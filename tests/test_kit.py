"""The shared app kit with a tiny deterministic engine: errors, ids, auth, limits, probes, metrics, OpenAPI."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
from flask import jsonify
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from common.app import create_service_app, service_context
from common.batching import MicroBatcher
from common.lifecycle import ModelEngine
from common.openapi import ApiBlueprint, Upload
from common.settings import ServerSettings, ServiceSettings
from common.streaming import ndjson_response
from common.validation import json_body
from tests.shared import wait_until


class EchoSettings(ServiceSettings):
    service_name: ClassVar[str] = "echo"
    model_config = SettingsConfigDict(env_prefix="ECHO__", env_nested_delimiter="__", extra="forbid")


class EchoEngine(ModelEngine):
    """Upper-cases words through a real MicroBatcher; ``gate`` holds loading until set."""

    def __init__(self, max_queue: int = 64) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.max_queue = max_queue
        self.batcher: MicroBatcher[str, str] | None = None

    def _load(self) -> None:
        self.gate.wait(5)
        self.batcher = MicroBatcher(self._model, name="echo", max_batch_size=1, max_queue=self.max_queue)

    def _model(self, items: list[str]) -> list[str]:
        self.entered.set()
        self.release.wait(5)
        if "boom" in items:
            raise RuntimeError("secret internal detail")
        return [i.upper() for i in items]

    def describe(self) -> dict:
        return {"model": "echo-1"}

    def close(self) -> None:
        super().close()
        if self.batcher:
            self.batcher.close()


class EchoRequest(BaseModel):
    words: list[str] = Field(min_length=1)
    times: int = Field(default=1, ge=1, le=3)


routes = ApiBlueprint("echo", __name__)


@routes.api("/echo", methods=["POST"], summary="Echo words upper-cased", request=EchoRequest)
def echo():
    body = json_body(EchoRequest)
    engine: EchoEngine = service_context().engine  # type: ignore[assignment]
    engine.ensure_ready()
    assert engine.batcher is not None
    return jsonify(words=engine.batcher.run(body.words * body.times))


@routes.api("/ping", summary="Declared open: no API key needed", open=True)
def ping():
    return jsonify(pong=True)


@routes.api("/upload", methods=["POST"], summary="A multipart form", request=EchoRequest, uploads=(Upload("file"),))
def upload():
    return jsonify(ok=True)


SOURCE_CLOSED = threading.Event()


@routes.api("/ticks", methods=["GET"], summary="Three NDJSON lines from a source that must be closed")
def ticks():
    SOURCE_CLOSED.clear()
    return ndjson_response(({"tick": i} for i in range(3)), close=SOURCE_CLOSED.set)


def make_app(api_key: str | None = None, ready: bool = True, max_queue: int = 64):
    settings = EchoSettings(server=ServerSettings(port=9999, api_key=api_key, max_body_bytes=4096))
    engine = EchoEngine(max_queue=max_queue)
    if ready:
        engine.gate.set()
    engine.start()
    if ready:
        assert engine.wait_ready(5)
    app = create_service_app("echo", settings, engine, [routes])
    return app, engine


@pytest.fixture
def echo_app():
    app, engine = make_app()
    yield app
    engine.close()


def test_success_and_request_id(echo_app) -> None:
    client = echo_app.test_client()
    response = client.post("/echo", json={"words": ["a", "b"]})
    assert response.status_code == 200
    assert response.json == {"words": ["A", "B"]}
    assert len(response.headers["X-Request-ID"]) == 32
    given = client.post("/echo", json={"words": ["a"]}, headers={"X-Request-ID": "trace-42"})
    assert given.headers["X-Request-ID"] == "trace-42"
    hostile = client.post("/echo", json={"words": ["a"]}, headers={"X-Request-ID": "<script>" + "x" * 200})
    assert len(hostile.headers["X-Request-ID"]) == 32  # replaced, not echoed back


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "words", "invalid_missing"),
        ({"words": []}, "words", "invalid_too_short"),
        ({"words": [1]}, "words.0", "invalid_string_type"),
        ({"words": ["a"], "times": 0}, "times", "invalid_greater_than_equal"),
        ({"words": ["a"], "times": "many"}, "times", "invalid_int_parsing"),
    ],
)
def test_validation_errors_name_the_field(echo_app, body: dict, param: str, code: str) -> None:
    response = echo_app.test_client().post("/echo", json=body)
    assert response.status_code == 400
    error = response.json["error"]
    assert error["param"] == param
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"
    assert param in error["message"]


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b"\xff\xfe{}", b'{"words": ["a"]', b"[" * 100000 + b"]" * 100000],
)
def test_malformed_bodies_are_400(raw: bytes) -> None:
    app, engine = make_app()
    app.config["MAX_CONTENT_LENGTH"] = None
    app.extensions["suite"].settings.server.max_body_bytes = 10**6
    try:
        response = app.test_client().post("/echo", data=raw, content_type="application/json")
        assert response.status_code == 400
        assert response.json["error"]["type"] == "invalid_request_error"
    finally:
        engine.close()


def test_routing_errors_are_json(echo_app) -> None:
    client = echo_app.test_client()
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json["error"]["type"] == "not_found_error"
    wrong_method = client.get("/echo")
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.headers["Allow"]
    assert wrong_method.json["error"]["message"] == "method GET not allowed for /echo"


def test_body_limit_is_413(echo_app) -> None:
    client = echo_app.test_client()
    response = client.post("/echo", json={"words": ["x" * 5000]})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"


def test_unhandled_error_hides_the_traceback(echo_app, caplog: pytest.LogCaptureFixture) -> None:
    response = echo_app.test_client().post("/echo", json={"words": ["boom"]}, headers={"X-Request-ID": "rid-7"})
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "secret internal detail" not in text and "Traceback" not in text
    assert "rid-7" in response.json["error"]["message"]
    assert echo_app.test_client().post("/echo", json={"words": ["ok"]}).json == {"words": ["OK"]}


def test_auth(echo_app) -> None:
    app, engine = make_app(api_key="k3y")
    client = app.test_client()
    try:
        assert client.post("/echo", json={"words": ["a"]}).status_code == 401
        wrong = client.post("/echo", json={"words": ["a"]}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json["error"]["type"] == "authentication_error"
        assert wrong.headers["WWW-Authenticate"] == "Bearer"
        assert client.post("/echo", json={"words": ["a"]}, headers={"Authorization": "Basic k3y"}).status_code == 401
        ok = client.post("/echo", json={"words": ["a"]}, headers={"Authorization": "Bearer k3y"})
        assert ok.status_code == 200
        for open_path in ("/health", "/healthz", "/readyz", "/ping"):  # each declared open=True
            assert client.get(open_path).status_code == 200, open_path
        for closed_path in ("/metrics", "/openapi.json", "/v1/models"):
            assert client.get(closed_path).status_code == 401, closed_path
    finally:
        engine.close()


def test_cors_lets_the_console_call_across_origins() -> None:
    app, engine = make_app(api_key="k3y")
    client = app.test_client()
    console, stranger = "http://127.0.0.1:7200", "http://evil.example"
    asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    try:
        preflight = client.options("/echo", headers={"Origin": console, **asks})
        assert preflight.status_code == 204  # answered before the key check: browsers send no key on a preflight
        assert preflight.headers["Access-Control-Allow-Origin"] == console
        allowed = {h.strip() for h in preflight.headers["Access-Control-Allow-Headers"].lower().split(",")}
        assert {"authorization", "content-type", "x-request-id"} <= allowed
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        ok = client.post("/echo", json={"words": ["a"]}, headers={"Origin": console, "Authorization": "Bearer k3y"})
        assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == console
        assert ok.headers["Access-Control-Expose-Headers"] == "X-Request-ID" and "Origin" in ok.headers["Vary"]
        refused = client.post("/echo", json={"words": ["a"]}, headers={"Origin": "http://localhost:7200"})
        assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == "http://localhost:7200"
        other = client.options("/echo", headers={"Origin": stranger, **asks})
        assert "Access-Control-Allow-Origin" not in other.headers
        assert "Access-Control-Allow-Origin" not in client.get("/health", headers={"Origin": stranger}).headers
        assert "Access-Control-Allow-Origin" not in client.get("/health").headers  # not a browser: nothing to add
    finally:
        engine.close()
    settings = EchoSettings(server=ServerSettings(port=9999, cors_origins=["*"]))
    anyone = create_service_app("echo", settings, EchoEngine(), [routes]).test_client()
    assert anyone.get("/healthz", headers={"Origin": stranger}).headers["Access-Control-Allow-Origin"] == stranger


def test_readiness_follows_loading() -> None:
    app, engine = make_app(ready=False)
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        loading = client.get("/health")
        assert loading.status_code == 503 and loading.json["status"] == "loading"
        busy = client.post("/echo", json={"words": ["a"]})
        assert busy.status_code == 503 and busy.headers["Retry-After"]
        engine.gate.set()
        assert engine.wait_ready(5)
        assert client.get("/readyz").json == {"status": "ready"}
        assert client.get("/health").json == {"status": "ok", "model": "echo-1"}
    finally:
        engine.close()


def test_queue_overflow_is_429_with_retry_after() -> None:
    app, engine = make_app(max_queue=1)
    engine.release.clear()
    client = app.test_client()
    try:
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda: results.append(client.post("/echo", json={"words": ["a"]}).status_code))
            for _ in range(4)
        ]
        threads[0].start()
        assert engine.entered.wait(5)  # one request is at the model...
        for t in threads[1:]:  # (started after it, so they cannot all find the queue full before it is taken)
            t.start()
        # ...and one waits in the full queue
        wait_until(lambda: engine.batcher is not None and engine.batcher.depth() >= 1, "a queued request", 10, 0.01)
        overflow = client.post("/echo", json={"words": ["a"]})
        assert overflow.status_code == 429
        assert overflow.headers["Retry-After"] == "1"
        assert overflow.json["error"]["type"] == "rate_limit_error"
        engine.release.set()
        for t in threads:
            t.join(5)
        assert 200 in results
        assert client.post("/echo", json={"words": ["a"]}).status_code == 200
    finally:
        engine.release.set()
        engine.close()


def test_metrics_count_requests(echo_app) -> None:
    client = echo_app.test_client()
    client.post("/echo", json={"words": ["a"]})
    client.post("/echo", json={})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{method="POST",route="/echo",service="echo",status="200"} 1.0' in text
    assert 'http_requests_total{method="POST",route="/echo",service="echo",status="400"} 1.0' in text
    assert "http_request_duration_seconds_bucket" in text


def test_openapi_describes_routes(echo_app) -> None:
    document = echo_app.test_client().get("/openapi.json").json
    assert document["openapi"].startswith("3.1")
    operation = document["paths"]["/echo"]["post"]
    schema_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/EchoRequest")
    assert "words" in document["components"]["schemas"]["EchoRequest"]["properties"]
    assert {"200", "400", "413"} <= set(operation["responses"])
    assert {"/health", "/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/models"} <= set(document["paths"])


def test_openapi_multipart_is_the_validating_model_plus_the_file(echo_app) -> None:
    document = echo_app.test_client().get("/openapi.json").json
    content = document["paths"]["/upload"]["post"]["requestBody"]["content"]
    schema = document["components"]["schemas"][content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["file"] == {"type": "string", "format": "binary", "description": ""}
    assert set(schema["required"]) == {"words", "file"}
    assert schema["properties"]["times"]["minimum"] == 1 and schema["properties"]["times"]["maximum"] == 3


def test_stream_source_is_closed_even_when_nothing_was_read(echo_app) -> None:
    client = echo_app.test_client()
    whole = client.get("/ticks")
    assert whole.get_data(as_text=True).splitlines() == ['{"tick":0}', '{"tick":1}', '{"tick":2}']
    whole.close()  # what a WSGI server does after the last chunk
    assert SOURCE_CLOSED.is_set()
    unread = client.get("/ticks", buffered=False)
    assert not SOURCE_CLOSED.is_set()
    unread.close()  # the client left before the first line
    assert SOURCE_CLOSED.is_set()
