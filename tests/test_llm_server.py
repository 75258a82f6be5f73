"""The LLM service under real gunicorn: the OpenAI SDK, the proxy backend against a real upstream on
loopback (this service's own local backend in another process), and upstream faults."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from harness.launch import RunningService, free_port, launch
from tests.shared import run_doc_curls

pytestmark = pytest.mark.slow
HI = [{"role": "user", "content": "Say hello in one short sentence."}]


def proxy_config(path: Path, base_url: str, **options) -> dict[str, str]:
    """A config file for the openai_upstream backend; returns the env that selects it."""
    config = {
        "server": {"port": 7207, "threads": 16},
        "cpu_threads": 1,
        "backend": "openai_upstream",
        "model_name": "Qwen2.5-Coder-0.5B-Instruct",
        "aliases": ["Qwen/Qwen3-Coder-480B-A35B-Instruct"],
        "options": {
            "base_url": base_url,
            "model": "Qwen2.5-Coder-0.5B-Instruct",
            "timeout_s": 60,
            "retries": 1,
            **options,
        },
        "defaults": {"max_tokens": 64},
    }
    path.write_text(yaml.safe_dump(config))
    return {"LLM_CONFIG": str(path)}


@pytest.fixture(scope="module")
def proxy(llm_server: RunningService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    run_dir = tmp_path_factory.mktemp("proxy")
    with launch("llm", run_dir, env=proxy_config(run_dir / "llm.yaml", f"{llm_server.url}/v1")) as service:
        yield service


def test_doc_curl_examples_work_as_written(llm_server: RunningService) -> None:
    assert run_doc_curls(llm_server, 7207) == 10


def test_openai_sdk_against_the_local_backend(llm_server: RunningService) -> None:
    client = openai.OpenAI(base_url=f"{llm_server.url}/v1", api_key="unused")
    completion = client.chat.completions.create(
        model="Qwen2.5-Coder-0.5B-Instruct", messages=HI, max_tokens=20, temperature=0, seed=1
    )
    assert completion.choices[0].message.content
    stream = client.chat.completions.create(
        model="Qwen2.5-Coder-0.5B-Instruct",
        messages=HI,
        max_tokens=20,
        temperature=0,
        seed=1,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == completion.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [m.id for m in client.models.list()] == ["Qwen2.5-Coder-0.5B-Instruct"]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="Qwen2.5-Coder-0.5B-Instruct", messages=[], max_tokens=5)


def test_proxy_serves_every_route(proxy: RunningService, llm_server: RunningService) -> None:
    with httpx.Client(base_url=proxy.url, timeout=120) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["model"] == "Qwen2.5-Coder-0.5B-Instruct"
        assert health["upstream"] == f"{llm_server.url}/v1"
        greedy = {"messages": HI, "temperature": 0, "seed": 3, "max_tokens": 24}
        chat = client.post("/api/chat", json={"model": "Qwen/Qwen3-Coder-480B-A35B-Instruct", **greedy}).json()
        assert chat["content"] and chat["raw"]["object"] == "chat.completion"
        direct = httpx.post(f"{llm_server.url}/api/chat", json=greedy, timeout=120).json()
        assert chat["content"] == direct["content"]
        lines = [json.loads(line) for line in client.post("/api/chat/stream", json=greedy).text.splitlines()]
        assert "".join(line.get("delta", "") for line in lines) == chat["content"]
        assert lines[-1]["event"] == "done" and lines[-1]["usage"]["completion_tokens"] > 0
        unknown = client.post("/api/chat", json={"model": "gpt-5", "messages": HI})
        assert unknown.status_code == 404
    sdk = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused")
    events = list(
        sdk.chat.completions.create(model="Qwen2.5-Coder-0.5B-Instruct", messages=HI, max_tokens=16, stream=True)
    )
    assert "".join(e.choices[0].delta.content or "" for e in events if e.choices)


def test_proxy_passes_the_upstreams_4xx_on(proxy: RunningService) -> None:
    too_long = httpx.post(
        f"{proxy.url}/api/chat", json={"messages": [{"role": "user", "content": "word " * 6000}]}, timeout=120
    )
    assert too_long.status_code == 400
    assert "too long" in too_long.json()["error"]["message"]


class FaultyUpstream(BaseHTTPRequestHandler):
    """An OpenAI-shaped upstream that fails on purpose: the model name picks the failure."""

    hang_ended = threading.Event()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["model"] == "hang":
            time.sleep(10)
            FaultyUpstream.hang_ended.set()
        payload = json.dumps({"error": {"message": "upstream exploded", "type": "server_error"}}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningService, str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FaultyUpstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    run_dir = tmp_path_factory.mktemp("faulty")
    env = proxy_config(run_dir / "llm.yaml", f"http://127.0.0.1:{server.server_port}/v1", timeout_s=1.5)
    env["LLM__PASS_THROUGH_MODELS"] = "true"
    try:
        with launch("llm", run_dir, env=env) as service:
            yield service, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.mark.faults
def test_upstream_500_is_502(faulty: tuple[RunningService, str]) -> None:
    service, _ = faulty
    for path in ("/api/chat", "/api/chat/stream", "/v1/chat/completions"):
        response = httpx.post(f"{service.url}{path}", json={"messages": HI}, timeout=30)
        assert response.status_code == 502, (path, response.text)
        assert "upstream exploded" in response.json()["error"]["message"]


@pytest.mark.faults
def test_upstream_too_slow_is_504_within_the_timeout(faulty: tuple[RunningService, str]) -> None:
    service, _ = faulty
    FaultyUpstream.hang_ended.clear()
    response = httpx.post(f"{service.url}/api/chat/stream", json={"model": "hang", "messages": HI}, timeout=30)
    assert response.status_code == 504
    assert not FaultyUpstream.hang_ended.is_set()  # answered while the upstream still hung: the timeout cut it
    assert response.json()["error"]["code"] == "upstream_timeout"


@pytest.mark.faults
def test_unreachable_upstream_is_502(tmp_path: Path) -> None:
    env = proxy_config(tmp_path / "llm.yaml", f"http://127.0.0.1:{free_port()}/v1")
    with launch("llm", tmp_path, env=env) as service:
        response = httpx.post(f"{service.url}/api/chat", json={"messages": HI}, timeout=30)
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_unreachable"
        assert httpx.get(f"{service.url}/readyz").status_code == 200


@pytest.mark.faults
def test_upstream_killed_mid_stream_ends_with_an_error_line(tmp_path: Path) -> None:
    with launch("llm", tmp_path / "upstream") as upstream:
        env = proxy_config(tmp_path / "llm.yaml", f"{upstream.url}/v1", timeout_s=10)
        with launch("llm", tmp_path / "proxy", env=env) as service:
            lines = []
            request = {
                "messages": [{"role": "user", "content": "Write a very long story about the sea."}],
                "max_tokens": 1500,
            }
            # a hung stream would fail on httpx's read timeout
            with httpx.stream("POST", f"{service.url}/api/chat/stream", json=request, timeout=60) as response:
                for line in response.iter_lines():
                    if not line:
                        continue
                    lines.append(json.loads(line))
                    if len(lines) == 3:
                        os.killpg(upstream.pid, signal.SIGKILL)
            assert lines[0].get("delta")
            assert lines[-1]["event"] == "error", lines[-3:]
            assert httpx.get(f"{service.url}/healthz").status_code == 200


@pytest.mark.faults
def test_client_disconnect_stops_generation(llm_server: RunningService) -> None:
    request = {
        "messages": [{"role": "user", "content": "Write a very long story about mountains."}],
        "max_tokens": 2000,
    }
    with httpx.stream("POST", f"{llm_server.url}/api/chat/stream", json=request, timeout=60) as response:
        for count, _ in enumerate(response.iter_lines()):
            if count == 3:
                break
    llm_server.wait_for_metric("engine_streams_stopped_total", 1)  # the engine saw the stream closed early
    quick = httpx.post(f"{llm_server.url}/api/chat", json={"messages": HI, "max_tokens": 4}, timeout=30)
    assert quick.status_code == 200
