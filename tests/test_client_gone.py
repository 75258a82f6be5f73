"""A client that leaves before its whole (not streamed) answer is ready stops the work, under real gunicorn.

The fake backends make each piece slowly, so the answer is still being made when the connection closes;
``engine_streams_stopped_total`` rises only when the engine saw the client gone and stopped. The real
llama-server case is in test_llm_concurrency.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from harness.launch import RunningService, launch
from harness.speech import wav_bytes
from tests.shared import leave_before_the_answer

pytestmark = pytest.mark.slow
IN_PROGRESS = "http_requests_in_progress"  # counts the /metrics request that reads it too


def left(service: RunningService, request: httpx.Request) -> None:
    """Leave ``request`` while it is being answered, and wait until the engine has stopped it."""
    stopped = service.metric("engine_streams_stopped_total")
    leave_before_the_answer(request, lambda: service.metric(IN_PROGRESS) >= 2)
    service.wait_for_metric("engine_streams_stopped_total", stopped + 1)


def test_an_asr_client_that_leaves_stops_the_transcription(tmp_path: Path) -> None:
    env = {"ASR__BACKEND": "fake", "ASR__OPTIONS__SEGMENT_DELAY_S": "0.3"}  # 0.3 s a segment, 20 segments
    with launch("asr", tmp_path, env=env) as service:
        audio = wav_bytes(np.zeros(20 * 16000, dtype=np.float32))
        left(service, httpx.Request("POST", f"{service.url}/asr", files={"file": ("a.wav", audio)}))
        route = f"{service.url}/v1/audio/transcriptions"
        left(service, httpx.Request("POST", route, files={"file": ("a.wav", audio)}, data={"model": "whisper-1"}))
        short = wav_bytes(np.zeros(16000, dtype=np.float32))
        assert httpx.post(f"{service.url}/asr", files={"file": ("a.wav", short)}, timeout=30).json()["text"] == "one"


def test_a_tts_client_that_leaves_stops_the_synthesis(tmp_path: Path) -> None:
    with launch("tts", tmp_path, env={"TTS__BACKEND": "fake", "TTS__OPTIONS__CLAUSE_DELAY_S": "0.3"}) as service:
        text = " ".join(["This is one clause."] * 20)
        left(service, httpx.Request("POST", f"{service.url}/synthesize", data={"text": text}))
        answer = httpx.post(f"{service.url}/synthesize", data={"text": "Still here."}, timeout=30)
        assert answer.status_code == 200 and answer.content[:4] == b"RIFF"


def test_an_llm_client_that_leaves_stops_the_answer(tmp_path: Path) -> None:
    env = {"LLM__BACKEND": "fake", "LLM__OPTIONS__CHUNK_DELAY_S": "0.2"}  # 0.2 s a word: 8 s for this answer
    with launch("llm", tmp_path, env=env) as service:
        words = {"messages": [{"role": "user", "content": " ".join(["word"] * 40)}], "max_tokens": 100}
        left(service, httpx.Request("POST", f"{service.url}/v1/chat/completions", json=words))
        answer = httpx.post(f"{service.url}/api/chat", json={**words, "max_tokens": 3}, timeout=30)
        assert answer.json()["content"] == "word word word"
