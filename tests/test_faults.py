"""Fault tests across services (run alone with -m faults): graceful shutdown with requests in flight."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from common.services import SERVICES
from harness.launch import REPO, launch
from harness.speech import long_speech, wav_bytes

pytestmark = [pytest.mark.slow, pytest.mark.faults]


def _long_embedding(url: str) -> httpx.Response:
    text = "一段很长的中文文本，用来测试优雅停机。" * 400  # ~6,000 tokens: keeps the e5 model busy for a while
    return httpx.post(f"{url}/multilingual-e5-small", json={"texts": [text]}, timeout=600)


def _long_transcription(url: str) -> httpx.Response:
    samples, _ = long_speech()
    return httpx.post(
        f"{url}/asr", files={"file": ("long.wav", wav_bytes(np.concatenate([samples, samples])))}, timeout=600
    )


def _long_answer(url: str) -> httpx.Response:
    messages = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    return httpx.post(f"{url}/api/chat", json={"messages": messages, "max_tokens": 120}, timeout=600)


def _long_speech(url: str) -> httpx.Response:
    text = "这是一段用来测试优雅停机的长文本，服务在合成的时候收到了停止信号。" * 6
    return httpx.post(f"{url}/synthesize", data={"text": text}, timeout=600)


@pytest.mark.parametrize(
    ("service", "long_request"),
    [("embedding", _long_embedding), ("asr", _long_transcription), ("llm", _long_answer), ("tts", _long_speech)],
)
def test_sigterm_lets_in_flight_requests_finish(
    tmp_path: Path, service: str, long_request: Callable[[str], httpx.Response]
) -> None:
    # a slow or busy machine must not turn into a failure: the point is that the request finishes
    with launch(service, tmp_path, env={f"{SERVICES[service].env_prefix}__SERVER__GRACEFUL_TIMEOUT": "600"}) as running:
        outcome: dict[str, httpx.Response] = {}
        worker = threading.Thread(target=lambda: outcome.setdefault("response", long_request(running.url)))
        worker.start()
        running.wait_for_metric("http_requests_in_progress", 2)  # the long request is in flight (and this scrape)
        stopped = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "services.py"), "stop", service],
            env=running.env,
            capture_output=True,
            text=True,
            timeout=660,
        )
        worker.join(660)
        assert stopped.returncode == 0, stopped.stderr
        assert outcome["response"].status_code == 200, outcome["response"].text[:300]
        with pytest.raises(httpx.ConnectError):  # new requests are refused once it has stopped
            httpx.get(f"{running.url}/healthz", timeout=5)
        assert not (tmp_path / f"{service}.pid").exists()
