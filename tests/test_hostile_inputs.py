"""A catalogue of hostile inputs for every route: never a 5xx, always JSON errors, the service keeps serving,
and no temp file is left behind."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from common.services import SERVICES
from harness.speech import encode, silent_flac

DEEP_JSON = b"[" * 50_000 + b"]" * 50_000
BAD_UTF8 = b'{"texts": ["\xff\xfe\xfd"]}'
MALFORMED_MULTIPART = (
    b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF',
    "multipart/form-data; boundary=x",
)


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("speech.wav", bytes(50_000_000))
    return buffer.getvalue()


JSON_CASES = [
    ("not json", b"hello", "text/plain"),
    ("form instead of json", b"a=1&b=2", "application/x-www-form-urlencoded"),
    ("deep json", DEEP_JSON, "application/json"),
    ("invalid utf-8", BAD_UTF8, "application/json"),
    ("json array", b"[1, 2, 3]", "application/json"),
    ("NaN literal", b'{"a": NaN, "b": "x", "texts": [NaN], "messages": [], "query": NaN}', "application/json"),
    ("huge number", b'{"texts": ["a"], "top_n": 1e400, "max_tokens": 1e400, "dimensions": -1}', "application/json"),
    (
        "nul bytes",
        b'{"texts": ["\\u0000"], "a": "\\u0000", "b": "x", "query": "\\u0000", "candidates": ["\\u0000"],'
        b' "messages": [{"role": "user", "content": "\\u0000"}], "max_tokens": 2}',
        "application/json",
    ),
    (
        "wrong types",
        b'{"texts": {"a": 1}, "a": [], "b": 3, "query": 1, "candidates": "x", "messages": {"role": 1}}',
        "application/json",
    ),
    ("multipart to a json route", *MALFORMED_MULTIPART),
]
AUDIO_CASES = [
    ("zip bomb", _zip_bomb()),
    ("20 minutes of silence", encode(np.zeros(16000 * 1200, dtype=np.float32), "flac", "flac")),
    ("10 hours of silence", silent_flac(10)),
    ("nul bytes", bytes(10_000)),
    ("text named wav", b"RIFF....WAVEfmt this is not audio" * 100),
]


@pytest.fixture(scope="module")
def clients(request: pytest.FixtureRequest) -> dict:
    """A test client per service around its real engine (hostile text reaches the real models)."""
    apps = {
        name: service.create_app()(
            request.getfixturevalue(f"{name}_settings"), engine=request.getfixturevalue(f"{name}_engine")
        )
        for name, service in SERVICES.items()
    }
    return {name: app.test_client() for name, app in apps.items()}


JSON_ROUTES = [
    ("embedding", "/all-MiniLM-L6-v2"),
    ("embedding", "/similarity"),
    ("embedding", "/rerank"),
    ("embedding", "/v1/embeddings"),
    ("embedding", "/v1/rerank"),
    ("llm", "/api/chat"),
    ("llm", "/api/chat/stream"),
    ("llm", "/v1/chat/completions"),
    ("tts", "/v1/audio/speech"),
    ("tts", "/synthesize"),
]
AUDIO_ROUTES = ["/asr", "/asr/stream", "/v1/audio/transcriptions"]


def _check(client, response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        assert response.is_json and "error" in response.json, response.get_data(as_text=True)[:300]
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(("service", "path"), JSON_ROUTES)
def test_hostile_json_bodies(clients, service: str, path: str) -> None:
    client = clients[service]
    before = set(Path(tempfile.gettempdir()).iterdir())
    for name, body, content_type in JSON_CASES:
        response = client.post(path, data=body, content_type=content_type)
        _check(client, response)
        if name in {"not json", "deep json", "invalid utf-8", "json array", "NaN literal", "wrong types"}:
            assert response.status_code == 400, (name, response.json)
    assert set(Path(tempfile.gettempdir()).iterdir()) - before == set()


@pytest.mark.parametrize("path", AUDIO_ROUTES)
def test_hostile_audio_uploads(fake_app, path: str) -> None:  # refused before any model runs
    client = fake_app("asr", aliases=["whisper-1"]).test_client()
    before = set(Path(tempfile.gettempdir()).iterdir())
    for name, audio in AUDIO_CASES:
        response = client.post(
            path, data={"file": (io.BytesIO(audio), "a.wav"), "model": "whisper-1"}, content_type="multipart/form-data"
        )
        _check(client, response)
        assert response.status_code == 400, (name, response.json)
    for body, content_type in (
        MALFORMED_MULTIPART,
        (b'{"file": "a.wav"}', "application/json"),
        (b"\x00" * 1000, "application/octet-stream"),
    ):
        response = client.post(path, data=body, content_type=content_type)
        _check(client, response)
        assert response.status_code == 400
    assert set(Path(tempfile.gettempdir()).iterdir()) - before == set()


@pytest.mark.parametrize("path", ["/synthesize", "/synthesize/stream"])
def test_hostile_reference_recordings(fake_app, path: str) -> None:  # refused before any model runs
    client = fake_app("tts").test_client()
    before = set(Path(tempfile.gettempdir()).iterdir())
    for name, audio in AUDIO_CASES:
        fields = {"text": "你好", "prompt_audio": (io.BytesIO(audio), "a.wav")}
        response = client.post(path, data=fields, content_type="multipart/form-data")
        _check(client, response)
        assert response.status_code == 400 and response.json["error"]["param"] == "prompt_audio", (name, response.json)
    for body, content_type in (MALFORMED_MULTIPART, (b"\x00" * 1000, "application/octet-stream")):
        response = client.post(path, data=body, content_type=content_type)
        _check(client, response)
        assert response.status_code == 400
    assert set(Path(tempfile.gettempdir()).iterdir()) - before == set()


@pytest.mark.parametrize("service", list(SERVICES))
def test_path_and_method_tricks(fake_app, service: str) -> None:
    client = fake_app(service).test_client()
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/v1/../../etc/shadow", "/\x00", "/" + "a" * 5000):
        response = client.get(path)
        _check(client, response)
        assert "root:" not in response.get_data(as_text=True)
    for method in ("PUT", "DELETE", "PATCH"):
        response = client.open("/v1/models", method=method)
        assert response.status_code == 405 and response.is_json


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.parametrize(("name", "path", "field"), [("asr", "/asr", "file"), ("tts", "/synthesize", "prompt_audio")])
def test_memory_returns_near_its_start_after_hostile_audio(request: pytest.FixtureRequest, name, path, field) -> None:
    import sys

    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from services import rss_mib  # scripts/services.py: RSS of a process tree

    service = request.getfixturevalue(f"{name}_server")

    def hostile_round() -> None:
        for case, audio in AUDIO_CASES:
            response = httpx.post(
                f"{service.url}{path}", data={"text": "你好"}, files={field: ("a.wav", audio)}, timeout=120
            )
            assert response.status_code == 400, (case, response.text[:200])

    hostile_round()  # warm-up: decoders and arenas reach their working size
    baseline = rss_mib(service.pid)
    for _ in range(3):
        hostile_round()
    after = rss_mib(service.pid)
    assert after < baseline * 1.10, f"RSS {baseline:.0f} MiB -> {after:.0f} MiB"
    assert httpx.get(f"{service.url}/readyz", timeout=10).status_code == 200
