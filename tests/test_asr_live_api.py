"""``/asr/live`` and ``/v1/realtime`` over real WebSockets on a fake model (fast): protocol and every error path."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from werkzeug.serving import make_server

import core
from asr_service.app import create_app
from asr_service.engine import AsrEngine
from asr_service.settings import AsrSettings
from harness.speech import librivox_clips, read_wav, wav_bytes
from tests.conftest import fake_settings
from tests.shared import collect_until, irregular_frames, pcm

RATE = 16000


@contextlib.contextmanager
def serve(settings: AsrSettings) -> Iterator[tuple[str, AsrEngine]]:
    """The ASR app on the fake backend, in a threaded Werkzeug server on a free port."""
    engine = AsrEngine(settings)
    engine.start(background=False)
    server = make_server("127.0.0.1", 0, create_app(settings, engine=engine), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.server_port}", engine
    finally:
        server.shutdown()
        engine.close()


@pytest.fixture(scope="module")
def asr_fake_settings() -> AsrSettings:
    return fake_settings("asr")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def live(asr_fake_settings: AsrSettings) -> Iterator[tuple[str, AsrEngine]]:
    with serve(asr_fake_settings) as running:
        yield running


def events_until_close(ws: ClientConnection) -> list[dict[str, Any]]:
    events = []
    with contextlib.suppress(ConnectionClosed):
        for message in ws:
            events.append(json.loads(message))
    return events


def speech() -> bytes:
    clip = read_wav(librivox_clips()[1][0])
    return pcm(np.concatenate([np.zeros(RATE // 2, dtype=np.float32), clip, np.zeros(RATE, dtype=np.float32)]))


def test_live_protocol_ready_partials_final_done(live: tuple[str, AsrEngine]) -> None:
    url, _ = live
    with connect(f"{url}/asr/live?language=en") as ws:
        ready = json.loads(ws.recv(timeout=5))
        assert ready["event"] == "ready" and ready["sample_rate"] == 16000 and ready["session"]
        for frame in irregular_frames(speech()):
            ws.send(frame)
        ws.send(json.dumps({"event": "end"}))
        events = events_until_close(ws)
        assert ws.close_code == 1000
    kinds = ["partial" if "partial_text" in e else "final" if e.get("final") else e.get("event") for e in events]
    assert kinds[-1] == "done" and kinds.count("final") == 1
    assert "partial" in kinds[: kinds.index("final")]
    final = next(e for e in events if e.get("final"))
    assert final["language"] == "en" and final["text"] and 0.2 < final["start"] < 0.8
    assert events[-1]["text"] == final["text"]


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b"\x00\x01\x02", "odd_frame"),
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('{"event": "pause"}', "unknown_event"),
    ],
)
def test_malformed_frames_get_an_error_and_a_clean_close(
    live: tuple[str, AsrEngine], message: bytes | str, code: str
) -> None:
    url, engine = live
    with connect(f"{url}/asr/live") as ws:
        ws.recv(timeout=5)
        ws.send(message)
        events = events_until_close(ws)
    assert events[-1]["error"]["code"] == code
    assert ws.close_code == 1008
    assert engine.live.active() == 0


def test_frame_over_the_limit_closes_with_1009(live: tuple[str, AsrEngine]) -> None:
    url, engine = live
    with connect(f"{url}/asr/live") as ws:
        ws.recv(timeout=5)
        ws.send(b"\x00" * (engine.settings.live.max_frame_bytes + 2))
        events = events_until_close(ws)
    assert events[-1]["error"]["code"] == "payload_too_large" and ws.close_code == 1009


@pytest.mark.parametrize("query", ["language=klingon", "sample_rate=7", "sample_rate=abc", "model=nope"])
def test_bad_query_is_refused(live: tuple[str, AsrEngine], query: str) -> None:
    url, _ = live
    with connect(f"{url}/asr/live?{query}") as ws:
        events = events_until_close(ws)
    assert "error" in events[0] and ws.close_code == 1008


def test_session_limit_gives_1013_and_the_service_keeps_serving(asr_fake_settings: AsrSettings) -> None:
    settings = asr_fake_settings.model_copy(
        update={"live": asr_fake_settings.live.model_copy(update={"max_sessions": 1})}
    )
    with serve(settings) as (url, _), connect(f"{url}/asr/live") as first:
        first.recv(timeout=5)
        with connect(f"{url}/asr/live") as second:
            events = events_until_close(second)
        assert events[0]["error"]["type"] == "rate_limit_error" and second.close_code == 1013
        first.send(json.dumps({"event": "end"}))
        assert events_until_close(first)[-1]["event"] == "done"


def test_api_key_by_header_query_or_subprotocol(asr_fake_settings: AsrSettings) -> None:
    server = asr_fake_settings.server.model_copy(update={"api_key": SecretStr("sesame")})
    with serve(asr_fake_settings.model_copy(update={"server": server})) as (url, _):
        with connect(f"{url}/asr/live") as ws:
            events = events_until_close(ws)
        assert events[0]["error"]["type"] == "authentication_error" and ws.close_code == 1008
        with connect(f"{url}/asr/live?api_key=wrong") as ws:
            assert "error" in events_until_close(ws)[0]
        for options in (
            {"additional_headers": {"Authorization": "Bearer sesame"}},
            {"subprotocols": ["openai-insecure-api-key.sesame"]},
        ):
            with connect(f"{url}/asr/live", **options) as ws:  # type: ignore[arg-type]
                assert json.loads(ws.recv(timeout=5))["event"] == "ready"
        with connect(f"{url}/asr/live?api_key=sesame") as ws:
            assert json.loads(ws.recv(timeout=5))["event"] == "ready"


def test_plain_http_get_is_a_json_400(live: tuple[str, AsrEngine]) -> None:
    import httpx

    url, _ = live
    response = httpx.get(url.replace("ws://", "http://") + "/asr/live")
    assert response.status_code == 400 and "error" in response.json()


def test_client_that_vanishes_frees_its_session(live: tuple[str, AsrEngine]) -> None:
    url, engine = live
    ws = connect(f"{url}/asr/live")
    ws.recv(timeout=5)
    ws.send(speech()[: RATE * 2])
    assert engine.live.active() == 1
    ws.socket.close()  # no close frame: the peer just disappears
    for _ in range(100):
        if engine.live.active() == 0:
            break
        threading.Event().wait(0.05)
    assert engine.live.active() == 0


def test_realtime_transcription_events(live: tuple[str, AsrEngine]) -> None:
    url, _ = live
    clip = read_wav(librivox_clips()[1][0])
    at_24k = np.interp(np.arange(len(clip) * 3 // 2) / 1.5, np.arange(len(clip)), clip).astype(np.float32)
    audio = pcm(np.concatenate([at_24k, np.zeros(24000, dtype=np.float32)]))
    with connect(f"{url}/v1/realtime?intent=transcription", subprotocols=["realtime"]) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "session.created"
        ws.send(
            json.dumps(
                {"type": "session.update", "session": {"audio": {"input": {"transcription": {"language": "en"}}}}}
            )
        )
        assert json.loads(ws.recv(timeout=5))["type"] == "session.updated"
        for start in range(0, len(audio), 9600):
            chunk = base64.b64encode(audio[start : start + 9600]).decode()
            ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        seen = collect_until(
            lambda: json.loads(ws.recv(timeout=10)),
            lambda event: event["type"] == "conversation.item.input_audio_transcription.completed",
            "the transcription",
        )
    types = [e["type"] for e in seen]
    assert "input_audio_buffer.committed" in types
    completed = seen[-1]
    assert (
        completed["transcript"] and completed["item_id"] == seen[types.index("input_audio_buffer.committed")]["item_id"]
    )


def test_realtime_rejects_unknown_events(live: tuple[str, AsrEngine]) -> None:
    url, _ = live
    with connect(f"{url}/v1/realtime") as ws:
        ws.recv(timeout=5)
        ws.send(json.dumps({"type": "response.create"}))
        events = events_until_close(ws)
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "unknown_event"


def test_http_auth_still_guards_file_routes(asr_fake_settings: AsrSettings) -> None:
    import httpx

    server = asr_fake_settings.server.model_copy(update={"api_key": SecretStr("sesame")})
    with serve(asr_fake_settings.model_copy(update={"server": server})) as (url, _):
        assert httpx.post(url.replace("ws://", "http://") + "/asr").status_code == 401


def test_core_live_client_and_cli(live: tuple[str, AsrEngine], tmp_path: Path) -> None:
    url, _ = live
    http_url = url.replace("ws://", "http://")
    wav = tmp_path / "speech.wav"
    wav.write_bytes(wav_bytes(np.frombuffer(speech(), dtype="<i2").astype(np.float32) / 32768))
    events = list(core.ASRClient(http_url).transcribe_live(wav, language="en", speed=20))
    assert [e for e in events if e.get("final")] and events[-1]["event"] == "done"
    printed = subprocess.run(
        [sys.executable, "core.py", "live", str(wav), "--speed", "20"],
        env={**os.environ, "ASR_URL": http_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    assert re.search(r"\[\s*0\.\d+-\s*\d+\.\d+\] \S", printed.stdout), printed.stdout


def test_core_live_client_raises_typed_errors(asr_fake_settings: AsrSettings) -> None:
    server = asr_fake_settings.server.model_copy(update={"api_key": SecretStr("sesame")})
    live = asr_fake_settings.live.model_copy(update={"max_sessions": 1})
    with serve(asr_fake_settings.model_copy(update={"server": server, "live": live})) as (url, _):
        http_url = url.replace("ws://", "http://")
        with pytest.raises(core.AuthenticationError):
            core.ASRClient(http_url, api_key="wrong").live()
        client = core.ASRClient(http_url, api_key="sesame")
        with client.live(language="en") as first:
            assert first.ready["event"] == "ready"
            with pytest.raises(core.RateLimitError):
                client.live()
        with pytest.raises(core.InvalidRequestError):
            client.live(sample_rate=5)


@pytest.mark.parametrize(
    ("limit", "send", "code"),
    [
        ({"idle_timeout_s": 0.3}, b"", "idle_timeout"),
        ({"max_session_s": 1.0}, b"\x00\x00" * RATE * 2, "session_too_long"),
    ],
)
def test_idle_and_too_long_sessions_are_closed(
    asr_fake_settings: AsrSettings, limit: dict[str, float], send: bytes, code: str
) -> None:
    live = asr_fake_settings.live.model_copy(update=limit)
    with serve(asr_fake_settings.model_copy(update={"live": live})) as (url, engine), connect(f"{url}/asr/live") as ws:
        ws.recv(timeout=5)
        if send:
            ws.send(send)
        events = events_until_close(ws)
        assert events[-1]["error"]["code"] == code and ws.close_code == 1008
        for _ in range(100):
            if engine.live.active() == 0:
                break
            threading.Event().wait(0.02)
        assert engine.live.active() == 0
