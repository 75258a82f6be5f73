"""Route plumbing of every service on its fake backend (no weights): milliseconds per test.

The real models' behaviour is tested in test_<service>_api.py; these check shapes, streams, errors and
what every service shares.
"""

from __future__ import annotations

import io
import json

import pytest

from common.services import SERVICES
from harness.speech import wav_bytes

SECOND = [0.1] * 16000


def _upload(client, path: str, seconds: int, **fields):
    audio = wav_bytes(SECOND * seconds)
    return client.post(path, data={"file": (io.BytesIO(audio), "a.wav"), **fields}, content_type="multipart/form-data")


@pytest.mark.parametrize("name", list(SERVICES))
def test_models_route_lists_what_the_engine_serves(fake_app, name: str) -> None:
    app = fake_app(name)
    body = app.test_client().get("/v1/models").get_json()
    engine = app.extensions["suite"].engine
    assert body["object"] == "list"
    assert {card["id"]: card["aliases"] for card in body["data"]} == engine.served_models()
    assert all(card["object"] == "model" and card["owned_by"] == "local" for card in body["data"])


def test_asr_shapes_labels_and_formats(fake_app) -> None:
    client = fake_app("asr", options={"labels": {"emotion": "HAPPY", "event": "Speech"}}).test_client()
    body = _upload(client, "/asr", 3).get_json()
    assert body["text"] == "one two three" and body["model"] == "fake-model" and body["duration"] == 3.0
    assert [s["text"] for s in body["segments"]] == ["one", "two", "three"]
    assert body["emotion"] == "HAPPY" and body["event"] == "Speech"  # labels any backend gives
    srt = _upload(client, "/v1/audio/transcriptions", 2, response_format="srt").get_data(as_text=True)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,000\none")
    verbose = _upload(
        client,
        "/v1/audio/transcriptions",
        2,
        response_format="verbose_json",
        **{"timestamp_granularities[]": ["word", "segment"]},
    ).get_json()
    assert [w["word"] for w in verbose["words"]] == ["one", "two"] and len(verbose["segments"]) == 2
    plain = fake_app("asr").test_client()
    assert "emotion" not in _upload(plain, "/asr", 1).get_json()


def test_asr_stream_that_fails_midway_ends_with_an_error_line(fake_app) -> None:
    client = fake_app("asr", options={"fail_after": 1}).test_client()
    response = _upload(client, "/asr/stream", 3)
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert lines[0]["partial_text"] == "one"
    assert lines[-1]["event"] == "error" and "message" in lines[-1]
    assert client.get("/readyz").status_code == 200  # the model is free again
    assert _upload(fake_app("asr").test_client(), "/asr", 1).status_code == 200


def test_llm_ndjson_and_sse_shapes(fake_app) -> None:
    client = fake_app("llm").test_client()
    body = {"messages": [{"role": "user", "content": "red green blue"}], "max_tokens": 2}
    whole = client.post("/api/chat", json=body).get_json()
    assert whole["content"] == "red green" and whole["model"] == "fake-model"
    assert whole["raw"]["choices"][0]["finish_reason"] == "length"
    lines = [
        json.loads(line) for line in client.post("/api/chat/stream", json=body).get_data(as_text=True).splitlines()
    ]
    assert [line["delta"] for line in lines[:-1]] == ["red", " green"]
    assert lines[-1]["event"] == "done" and lines[-1]["finish_reason"] == "length" and lines[-1]["usage"]
    sse = client.post("/v1/chat/completions", json={**body, "stream": True}).get_data(as_text=True)
    events = [chunk[6:] for chunk in sse.split("\n\n") if chunk]
    assert events[-1] == "[DONE]"
    assert all(json.loads(event)["model"] == "fake-model" for event in events[:-1])


def test_llm_stream_that_fails_midway_ends_with_an_error_line(fake_app) -> None:
    client = fake_app("llm", options={"fail_after": 1}).test_client()
    body = {"messages": [{"role": "user", "content": "red green blue"}]}
    lines = [
        json.loads(line) for line in client.post("/api/chat/stream", json=body).get_data(as_text=True).splitlines()
    ]
    assert lines[0] == {"delta": "red"} and lines[-1]["event"] == "error"


def test_tts_routes_on_tones(fake_app) -> None:
    client = fake_app("tts").test_client()
    wav = client.post("/synthesize", data={"text": "hello"}, content_type="multipart/form-data")
    assert wav.status_code == 200 and wav.mimetype == "audio/wav"
    seconds = float(wav.headers["X-Audio-Duration"])
    assert 0.25 <= seconds < 1.0  # 5 letters x 0.05 s, and the clause's pause
    styles = client.get("/styles").get_json()
    assert styles["default"] == "style1" and {s["name"] for s in styles["styles"]} >= {"style1", "style2"}
    voices = client.get("/v1/audio/voices").get_json()
    assert voices["object"] == "list" and {"style1", "alloy"} <= {v["id"] for v in voices["data"]}
    pcm = client.post("/v1/audio/speech", json={"input": "hello", "response_format": "pcm"})
    assert pcm.status_code == 200 and len(pcm.data) == pytest.approx(seconds * 24000 * 2, rel=0.01)


def test_openapi_documents_the_validating_forms(fake_app) -> None:
    schemas = fake_app("asr").test_client().get("/openapi.json").get_json()["components"]["schemas"]
    form = schemas["AsrFormMultipart"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    assert "pattern" in json.dumps(form["properties"]["language"]) and "UploadForm" not in schemas
    tts = fake_app("tts").test_client().get("/openapi.json").get_json()["components"]["schemas"]
    assert "prompt_audio" not in tts["SynthesizeFormMultipart"].get("required", [])
    assert tts["SynthesizeFormMultipart"]["properties"]["speed"]["maximum"] == 4.0


@pytest.mark.parametrize(
    ("name", "path", "request_kwargs"),
    [
        ("asr", "/asr/stream", {"data": {"file": (io.BytesIO(wav_bytes(SECOND * 4)), "a.wav")}}),
        ("llm", "/api/chat/stream", {"json": {"messages": [{"role": "user", "content": "a b c d e f"}]}}),
        ("tts", "/synthesize/stream", {"data": {"text": "One. Two. Three. Four."}}),
    ],
)
def test_a_stream_left_early_is_counted_and_frees_the_model(name: str, path: str, request_kwargs: dict) -> None:
    from common.services import SERVICES
    from harness.launch import metric_value
    from tests.conftest import fake_settings

    app = SERVICES[name].create_app()(fake_settings(name))  # its own engine, reporting to the app's metrics
    engine = app.extensions["suite"].engine
    try:
        assert engine.wait_ready(10)
        client = app.test_client()
        metrics = lambda: client.get("/metrics").get_data(as_text=True)  # noqa: E731
        response = client.post(path, buffered=False, **request_kwargs)
        pieces = iter(response.response)
        next(pieces), next(pieces)  # the first two pieces (TTS: the WAV header, then a clause), then leave
        assert metric_value(metrics(), "engine_model_in_use") == 1
        response.close()
        assert metric_value(metrics(), "engine_streams_stopped_total") == 1
        assert metric_value(metrics(), "engine_model_in_use") == 0
        assert metric_value(metrics(), "http_requests_in_progress") == 1  # the /metrics call itself
    finally:
        engine.close()
