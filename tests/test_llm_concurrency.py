"""Many users at once on the offline engine (llama-server as a supervised child), under real gunicorn:
concurrent streams without cross-talk, a disconnect frees its slot, 429 past the slots and the line,
kill -9 of the child mid-stream, and no llama-server outliving a SIGTERM'd or SIGKILL'd service."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.launch import RunningService, launch, write_config
from tests.shared import gone, leave_before_the_answer, wait_until

pytestmark = pytest.mark.slow
CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Egypt": "Cairo"}


def health(service: RunningService) -> dict:
    return httpx.get(f"{service.url}/health", timeout=30).json()


def ready(service: RunningService) -> bool:
    try:
        return httpx.get(f"{service.url}/readyz", timeout=30).status_code == 200
    except httpx.HTTPError:  # a new worker is still starting
        return False


def child_pid(service: RunningService) -> int:
    return health(service)["engine"]["pid"]


def child_url(pid: int) -> str:
    """The loopback URL llama-server was started on (from its command line)."""
    argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    return f"http://127.0.0.1:{argv[argv.index('--port') + 1]}"


def small_service(tmp_path: Path, **options: object) -> dict[str, str]:
    """Config with one slot and a line of one, so that the bound is reached with three requests."""
    overrides = {"server": {"threads": 4}, "options": {"parallel": 1, **options}, "limits": {"max_waiting": 1}}
    return {"LLM_CONFIG": str(write_config("llm", tmp_path / "llm.yaml", overrides))}


@pytest.fixture
def one_slot(tmp_path: Path) -> Iterator[RunningService]:
    with launch("llm", tmp_path, env=small_service(tmp_path)) as service:
        yield service


def stream_lines(url: str, body: dict, lines: list[dict], stop_after: int | None = None) -> None:
    """Stream ``/api/chat/stream`` into ``lines``; disconnect after ``stop_after`` lines."""
    with httpx.stream("POST", f"{url}/api/chat/stream", json=body, timeout=300) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line:
                lines.append(json.loads(line))
                if stop_after is not None and len(lines) >= stop_after:
                    return


def long_story(topic: str) -> dict:
    return {"messages": [{"role": "user", "content": f"Write a very long story about {topic}."}], "max_tokens": 2000}


def test_concurrent_streams_each_answer_their_own_question(llm_server: RunningService) -> None:
    outputs: dict[str, list[dict]] = {country: [] for country in CAPITALS}
    barrier = threading.Barrier(len(CAPITALS))

    def ask(country: str) -> None:
        question = f"What is the capital of {country}? Answer with the city name only."
        barrier.wait()
        body = {"messages": [{"role": "user", "content": question}], "max_tokens": 16, "temperature": 0}
        stream_lines(llm_server.url, body, outputs[country])

    threads = [threading.Thread(target=ask, args=(country,)) for country in CAPITALS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for country, lines in outputs.items():
        text = "".join(line.get("delta", "") for line in lines)
        assert lines[-1]["event"] == "done", lines[-1]
        assert CAPITALS[country] in text, (country, text)
        assert not [city for city in CAPITALS.values() if city != CAPITALS[country] and city in text], text


def test_a_disconnect_frees_the_slot(llm_server: RunningService) -> None:
    body = long_story("a lighthouse keeper who collects clocks")
    stream_lines(llm_server.url, body, [], stop_after=3)
    wait_until(lambda: health(llm_server)["slots"]["busy"] == 0, "an idle llama-server")
    slots = httpx.get(f"{child_url(child_pid(llm_server))}/slots", timeout=30).json()
    ours = max((slot for slot in slots if "id_task" in slot), key=lambda slot: slot["id_task"])  # the latest task
    assert not ours["is_processing"]
    assert ours["next_token"][0]["n_decoded"] < 100  # stopped soon after the client left, not at 2000


def test_a_client_that_leaves_before_a_whole_answer_frees_the_slot(llm_server: RunningService) -> None:
    request = httpx.Request("POST", f"{llm_server.url}/api/chat", json=long_story("a baker who bakes for birds"))
    leave_before_the_answer(request, lambda: health(llm_server)["slots"]["busy"] >= 1)
    wait_until(lambda: health(llm_server)["slots"]["busy"] == 0, "an idle llama-server")
    slots = httpx.get(f"{child_url(child_pid(llm_server))}/slots", timeout=30).json()
    ours = max((slot for slot in slots if "id_task" in slot), key=lambda slot: slot["id_task"])
    assert ours["next_token"][0]["n_decoded"] < 300  # the upstream request was closed, not run to 2000 tokens
    hi = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    assert httpx.post(f"{llm_server.url}/api/chat", json=hi, timeout=30).status_code == 200


def hold_slot(url: str, body: dict, lines: list[dict], release: threading.Event) -> None:
    """Stream ``/api/chat/stream`` into ``lines`` until ``release`` is set, then disconnect."""
    with httpx.stream("POST", f"{url}/api/chat/stream", json=body, timeout=300) as response:
        for line in response.iter_lines():
            if line:
                lines.append(json.loads(line))
                if release.is_set():
                    return


def test_requests_past_the_slots_and_the_line_get_429(one_slot: RunningService) -> None:
    first: list[dict] = []
    release = threading.Event()  # the first stream keeps its slot until the 429 has been seen
    holder = threading.Thread(target=hold_slot, args=(one_slot.url, long_story("ships"), first, release))
    holder.start()
    wait_until(lambda: len(first) >= 1, "the first stream's first token")
    waiting: list[dict] = []
    waiter = threading.Thread(target=stream_lines, args=(one_slot.url, long_story("trains"), waiting, 2))
    waiter.start()
    wait_until(lambda: health(one_slot)["waiting"] == 1, "a request waiting for the slot")
    refused = httpx.post(f"{one_slot.url}/api/chat", json=long_story("planes"), timeout=30)
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] and refused.json()["error"]["code"] == "queue_full"
    release.set()
    holder.join()
    waiter.join()
    assert waiting[0].get("delta")  # the waiting request got the slot once the first left
    metrics = httpx.get(f"{one_slot.url}/metrics", timeout=30).text
    assert 'llm_slots{service="llm",state="idle"}' in metrics


def test_kill_9_of_the_child_mid_stream_ends_with_an_error_line_then_serves_again(tmp_path: Path) -> None:
    with launch("llm", tmp_path) as service:
        pid = child_pid(service)
        lines: list[dict] = []
        with httpx.stream("POST", f"{service.url}/api/chat/stream", json=long_story("rivers"), timeout=300) as response:
            for line in response.iter_lines():
                if line:
                    lines.append(json.loads(line))
                    if len(lines) == 3:
                        os.kill(pid, signal.SIGKILL)
        assert lines[0].get("delta")
        assert lines[-1]["event"] == "error", lines[-3:]
        wait_until(lambda: ready(service), "ready again", limit=300)
        after = health(service)
        assert after["engine"]["restarts"] == 1 and after["engine"]["pid"] != pid
        assert "killed by signal 9" in after["engine"]["last_exit"]
        answer = httpx.post(
            f"{service.url}/api/chat", json={"messages": [{"role": "user", "content": "Hi"}]}, timeout=60
        )
        assert answer.status_code == 200 and answer.json()["content"]
        assert gone(pid)


def test_sigterm_of_the_service_leaves_no_llama_server(tmp_path: Path) -> None:
    with launch("llm", tmp_path) as service:
        pid = child_pid(service)
        assert not gone(pid)
    wait_until(lambda: gone(pid), "llama-server's exit")


def test_sigkill_of_the_service_leaves_no_llama_server(tmp_path: Path) -> None:
    with launch("llm", tmp_path) as service:
        pid = child_pid(service)
        worker = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(service.pid, signal.SIGKILL)  # the gunicorn master only: its worker and llama-server must follow
        wait_until(lambda: gone(worker), "the worker's exit")
        wait_until(lambda: gone(pid), "llama-server's exit")


def test_sigkill_of_the_worker_takes_its_llama_server_along_and_gunicorn_recovers(tmp_path: Path) -> None:
    with launch("llm", tmp_path) as service:
        pid = child_pid(service)
        worker = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: gone(pid), "llama-server's exit")
        wait_until(lambda: ready(service), "a new worker", limit=300)
        assert child_pid(service) != pid
