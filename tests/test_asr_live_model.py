"""Live transcription on the real Whisper model: English speech and Chinese speech made by our own TTS.

In process first (the engine's live session, fed frames of irregular lengths), then over real
WebSockets under gunicorn (slow): the stock OpenAI SDK's realtime client, disconnects and SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from scipy.signal import resample_poly
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from asr_service.backends import TranscriptionParams
from asr_service.engine import AsrEngine
from harness.launch import RunningService, launch
from harness.speech import character_error_rate, librivox_clips, read_wav, wav_bytes, word_error_rate
from tests.shared import collect_until, drain, irregular_frames, pcm, wait_until

RATE = 16000
CHINESE = "今天天气很好，我们一起去公园散步吧。人工智能正在改变我们的生活方式。"


def with_pauses(*clips: np.ndarray, pause: float = 1.2) -> np.ndarray:
    silence = np.zeros(int(pause * RATE), dtype=np.float32)
    return np.concatenate([silence[: RATE // 2]] + [part for clip in clips for part in (clip, silence)])


def live_events(
    engine: AsrEngine, audio: np.ndarray, language: str | None = None, hold_at: float | None = None
) -> list[dict[str, Any]]:
    """Feed ``audio`` in irregular frames; with ``hold_at`` (seconds), wait there for a partial before going on.

    Unpaced audio arrives faster than any decode, so a session rightly skips straight to finals;
    holding the rest back stands in for a speaker who has not finished yet.
    """
    session = engine.open_live(language=language)
    early: list[dict[str, Any]] = []
    fed = 0
    for frame in irregular_frames(pcm(audio), seed=7):
        session.feed(frame)
        fed += len(frame) // 2
        if hold_at is not None and fed >= hold_at * RATE:
            hold_at = None
            early += collect_until(
                lambda: session.events.get(timeout=120), lambda event: "partial_text" in event, "a partial"
            )
    session.finish()
    try:
        return early + drain(session, timeout=120)
    finally:
        session.close()


@pytest.fixture(scope="module")
def chinese_speech(tts_engine: Any) -> np.ndarray:
    speech = tts_engine.synthesize(CHINESE, style="style2")
    return resample_poly(speech.samples, RATE, speech.sample_rate).astype(np.float32)


def test_english_live_finals_match_the_file_route(asr_engine: AsrEngine) -> None:
    clips = librivox_clips()
    audio = with_pauses(*(read_wav(path) for path, _ in clips))
    events = live_events(asr_engine, audio, language="en", hold_at=2.5)
    finals = [e for e in events if e.get("final")]
    assert len(finals) == len(clips), events
    assert any("partial_text" in e for e in events[: events.index(finals[0])]), "partials come before the final"
    reference = " ".join(text for _, text in clips)
    file_text = asr_engine.transcribe(wav_bytes(audio)).text
    # at most two words of 71 apart (a short window hears "ill-sposed" where the 30 s one hears "ill-disposed")
    assert word_error_rate(reference, events[-1]["text"]) <= word_error_rate(reference, file_text) + 0.03
    assert events[-1]["event"] == "done" and events[-1]["text"] == " ".join(f["text"] for f in finals)


def test_auto_language_detects_english(asr_engine: AsrEngine) -> None:
    path, reference = librivox_clips()[4]
    finals = [e for e in live_events(asr_engine, with_pauses(read_wav(path))) if e.get("final")]
    assert [f["language"] for f in finals] == ["en"]
    assert word_error_rate(reference, finals[0]["text"]) <= 0.15


def test_chinese_live_is_simplified_with_full_width_punctuation(
    asr_engine: AsrEngine, chinese_speech: np.ndarray
) -> None:
    events = live_events(asr_engine, with_pauses(chinese_speech), language="zh")
    text = events[-1]["text"]
    assert character_error_rate(CHINESE, text) <= 0.30, text
    assert not any(mark in text for mark in ",.?!"), text
    file_text = asr_engine.transcribe(wav_bytes(chinese_speech), TranscriptionParams(language="zh")).text
    assert character_error_rate(CHINESE, text) <= character_error_rate(CHINESE, file_text) + 0.10
    assert not any(mark in file_text for mark in ",?!"), "the file route gives full-width punctuation too"


def test_a_looping_partial_gives_no_text_where_a_final_falls_back(
    asr_engine: AsrEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asr_service.backends import whisper_utterance

    path, reference = librivox_clips()[1]
    clip = read_wav(path)
    assert asr_engine.transcribe(wav_bytes(clip), TranscriptionParams(language="en", utterance=True, preview=True)).text
    monkeypatch.setattr(whisper_utterance, "repeats", lambda text: True)  # as if the short window looped
    preview = asr_engine.transcribe(wav_bytes(clip), TranscriptionParams(language="en", utterance=True, preview=True))
    assert preview.text == ""
    final = asr_engine.transcribe(wav_bytes(clip), TranscriptionParams(language="en", utterance=True))
    assert word_error_rate(reference, final.text) <= 0.15  # the ordinary 30 s decode


def test_silence_only_gives_no_text(asr_engine: AsrEngine) -> None:
    noise = np.random.default_rng(3).normal(0, 0.002, 4 * RATE).astype(np.float32)
    events = live_events(asr_engine, noise)
    assert events == [{"event": "done", "text": "", "duration": 4.0}]


# -- over real WebSockets under gunicorn --


def stream_paced(url: str, audio: np.ndarray, speed: float = 4.0, **options: Any) -> list[dict[str, Any]]:
    """Send audio in 100 ms frames at ``speed`` x real time, then ``end``; every event until the close."""
    data = pcm(audio)
    events: list[dict[str, Any]] = []
    with connect(url, **options) as ws:
        assert json.loads(ws.recv(timeout=30))["event"] == "ready"
        for start in range(0, len(data), 3200):
            ws.send(data[start : start + 3200])
            time.sleep(0.1 / speed)
        ws.send(json.dumps({"event": "end"}))
        with contextlib.suppress(ConnectionClosed):
            for message in ws:
                events.append(json.loads(message))
    return events


@pytest.mark.slow
def test_live_route_under_gunicorn(asr_server: RunningService) -> None:
    path, reference = librivox_clips()[1]
    url = asr_server.url.replace("http://", "ws://") + "/asr/live?language=en"
    events = stream_paced(url, with_pauses(read_wav(path)))
    finals = [e for e in events if e.get("final")]
    assert len(finals) == 1 and word_error_rate(reference, finals[0]["text"]) <= 0.15, events
    assert events[-1]["event"] == "done"
    assert httpx.get(f"{asr_server.url}/health").json()["live_sessions"] == 0


@pytest.mark.slow
def test_stock_openai_realtime_client(asr_server: RunningService) -> None:
    import base64

    path, reference = librivox_clips()[1]
    clip = with_pauses(read_wav(path))
    at_24k = resample_poly(clip, 3, 2).astype(np.float32)
    client = openai.OpenAI(base_url=f"{asr_server.url}/v1", api_key="unused")
    with client.realtime.connect(model="whisper-1") as connection:
        assert connection.recv().type == "session.created"
        connection.session.update(
            session={"type": "transcription", "audio": {"input": {"transcription": {"language": "en"}}}}
        )
        data = pcm(at_24k)
        for start in range(0, len(data), 9600):
            connection.input_audio_buffer.append(audio=base64.b64encode(data[start : start + 9600]).decode())
        transcript = None
        for event in connection:
            if event.type == "conversation.item.input_audio_transcription.completed":
                transcript = event.transcript
                break
    assert transcript is not None and word_error_rate(reference, transcript) <= 0.15, transcript


@pytest.mark.slow
def test_disconnect_mid_utterance_frees_the_session(asr_server: RunningService) -> None:
    url = asr_server.url.replace("http://", "ws://") + "/asr/live"
    ws = connect(url)
    ws.recv(timeout=30)
    ws.send(pcm(read_wav(librivox_clips()[0][0]))[: RATE * 2 * 3])
    sessions = lambda: httpx.get(f"{asr_server.url}/health").json()["live_sessions"]  # noqa: E731
    wait_until(lambda: sessions() == 1, "the session's start", 30)
    ws.socket.close()
    wait_until(lambda: sessions() == 0, "the session's end after its client left", 30)


@pytest.mark.slow
def test_sigterm_drains_a_live_session(tmp_path: Path) -> None:
    """The sentence being spoken when the service is told to stop still gets its final; then going_away, 1012."""
    path, reference = librivox_clips()[1]
    clip = read_wav(path)
    with launch("asr", tmp_path) as service:
        url = service.url.replace("http://", "ws://") + "/asr/live?language=en"
        received: list[dict[str, Any]] = []
        with connect(url) as ws:
            ws.recv(timeout=30)
            data = pcm(np.concatenate([np.zeros(RATE // 2, np.float32), clip, np.zeros(RATE, np.float32)]))
            with contextlib.suppress(ConnectionClosed):  # the service may close once the sentence is final
                for index, start in enumerate(range(0, len(data), 3200)):
                    if index == 15:  # 1 s into the sentence
                        _terminate(service)
                    ws.send(data[start : start + 3200])
                    time.sleep(0.05)
            with contextlib.suppress(ConnectionClosed):
                for message in ws:
                    received.append(json.loads(message))
        finals = [e for e in received if e.get("final")]
        assert len(finals) == 1 and word_error_rate(reference, finals[0]["text"]) <= 0.15, received
        assert received[-1]["event"] == "going_away" and received[-1]["resume_from"] >= finals[0]["end"]
        assert ws.close_code == 1012


def _terminate(service: RunningService) -> None:
    os.kill(service.pid, signal.SIGTERM)


@pytest.mark.slow
def test_core_live_client_on_the_real_model(asr_server: RunningService, tmp_path: Path) -> None:
    import core

    path, reference = librivox_clips()[4]
    wav = tmp_path / "question.wav"
    wav.write_bytes(wav_bytes(with_pauses(read_wav(path))))
    events = list(core.ASRClient(asr_server.url).transcribe_live(wav, language="en", speed=3))
    assert events[-1]["event"] == "done"
    assert word_error_rate(reference, events[-1]["text"]) <= 0.15, events
