"""The ASR service under real gunicorn: OpenAI SDK, streaming over real sockets, disconnects, overflow."""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from harness.launch import RunningService, launch
from harness.speech import librivox_clips, long_speech, wav_bytes, word_error_rate
from tests.shared import run_doc_curls

pytestmark = pytest.mark.slow
CLIP, REFERENCE = librivox_clips()[1]


@pytest.fixture(scope="module")
def long_wav() -> bytes:
    return wav_bytes(long_speech()[0])


def test_doc_curl_examples_work_as_written(asr_server: RunningService) -> None:
    assert run_doc_curls(asr_server, 7205) == 9


def test_seed_curl_shape(asr_server: RunningService) -> None:
    response = httpx.post(f"{asr_server.url}/asr", files={"file": ("test.wav", CLIP.read_bytes())}, timeout=60)
    assert response.status_code == 200
    assert word_error_rate(REFERENCE, response.json()["text"]) <= 0.1
    assert httpx.get(f"{asr_server.url}/health").json()["status"] == "ok"


def test_openai_sdk_all_formats_and_stream(asr_server: RunningService, tmp_path: Path) -> None:
    client = openai.OpenAI(base_url=f"{asr_server.url}/v1", api_key="unused")
    with CLIP.open("rb") as audio:
        plain = client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert word_error_rate(REFERENCE, plain.text) <= 0.1
    for response_format in ("text", "srt", "vtt"):
        with CLIP.open("rb") as audio:
            rendered = client.audio.transcriptions.create(
                model="whisper-1", file=audio, response_format=response_format
            )
        assert "young man" in str(rendered).lower()
    with CLIP.open("rb") as audio:
        verbose = client.audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            language="en",
        )
    assert verbose.language == "en" and verbose.words and verbose.segments
    with CLIP.open("rb") as audio:
        events = list(client.audio.transcriptions.create(model="whisper-1", file=audio, stream=True))
    assert events[-1].type == "transcript.text.done"
    assert word_error_rate(REFERENCE, events[-1].text) <= 0.1
    assert [m.id for m in client.models.list()] == ["whisper-base"]


def test_stream_lines_arrive_before_decoding_ends(asr_server: RunningService, long_wav: bytes) -> None:
    started = time.perf_counter()
    arrivals = []
    with httpx.stream(
        "POST", f"{asr_server.url}/asr/stream", files={"file": ("long.wav", long_wav)}, timeout=120
    ) as response:
        for line in response.iter_lines():
            if line:
                arrivals.append(time.perf_counter() - started)
    assert len(arrivals) >= 3
    assert arrivals[0] < arrivals[-1] * 0.7, arrivals


@pytest.mark.faults
def test_client_disconnect_stops_decoding(asr_server: RunningService, long_wav: bytes) -> None:
    host, port = asr_server.url.removeprefix("http://").split(":")
    boundary = "suiteboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            f"Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + long_wav
        + f"\r\n--{boundary}--\r\n".encode()
    )
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.request("POST", "/asr/stream", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    response = connection.getresponse()
    assert response.status == 200
    assert b"partial_text" in response.readline()
    connection.sock.close()  # leave mid-stream
    connection.close()
    asr_server.wait_for_metric("engine_streams_stopped_total", 1)  # the engine saw the stream closed early
    quick = httpx.post(f"{asr_server.url}/asr", files={"file": ("a.wav", CLIP.read_bytes())}, timeout=30)
    assert quick.status_code == 200  # the model was released


@pytest.mark.faults
def test_full_queue_is_429_then_recovers(tmp_path: Path, long_wav: bytes) -> None:
    # one request at a time; the batched pool's bound is in test_asr_batching
    env = {"ASR__LIMITS__MAX_WAITING": "0", "ASR__OPTIONS__BATCH_SIZE": "1"}
    with launch("asr", tmp_path, env=env) as service:
        busy = threading.Thread(
            target=lambda: httpx.post(f"{service.url}/asr", files={"file": ("l.wav", long_wav)}, timeout=120)
        )
        busy.start()
        service.wait_for_metric("engine_model_in_use", 1)  # the long request holds the model now
        refused = httpx.post(f"{service.url}/asr", files={"file": ("a.wav", CLIP.read_bytes())}, timeout=30)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["type"] == "rate_limit_error"
        busy.join(120)
        again = httpx.post(f"{service.url}/asr", files={"file": ("a.wav", CLIP.read_bytes())}, timeout=30)
        assert again.status_code == 200
        metrics = httpx.get(f"{service.url}/metrics").text
        assert 'http_requests_total{method="POST",route="/asr",service="asr",status="429"} 1.0' in metrics


def test_upload_limit_is_413(asr_server: RunningService) -> None:
    response = httpx.post(f"{asr_server.url}/asr", files={"file": ("big.wav", b"\0" * 60_000_000)}, timeout=60)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
