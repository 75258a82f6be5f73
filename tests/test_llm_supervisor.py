"""The child-process supervisor on a real child (Python's http.server): ready, restart after kill -9,
a first start that fails, and no orphan when the parent is SIGKILL'd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest

from harness.launch import REPO
from llm_service.backends.llama_server import server_env
from llm_service.backends.supervisor import Supervisor
from tests.shared import gone, wait_until


def http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def test_restarts_a_killed_child_and_reports_why() -> None:
    allow_restart = threading.Event()
    starts = []

    def command(port: int) -> list[str]:
        starts.append(port)
        if len(starts) > 1:
            allow_restart.wait()
        return http_server(port)

    supervisor = Supervisor("child", command, health_path="/")
    supervisor.start()
    try:
        first = supervisor.status()
        assert first.state == "ready" and supervisor.url is not None
        assert httpx.get(supervisor.url).status_code == 200
        os.kill(first.pid, signal.SIGKILL)
        wait_until(lambda: supervisor.status().state == "restarting", "restarting state")
        assert not supervisor.ready and supervisor.url is None
        assert supervisor.status().last_exit == "child killed by signal 9"
        allow_restart.set()
        wait_until(lambda: supervisor.ready, "restart")
        second = supervisor.status()
        assert second.pid != first.pid and second.restarts == 1
        assert httpx.get(supervisor.url).status_code == 200
    finally:
        allow_restart.set()
        supervisor.close()
    assert supervisor.status().state == "stopped"
    assert gone(second.pid)


def test_a_child_that_cannot_start_fails_loading_with_its_last_words() -> None:
    failing = [sys.executable, "-c", "import sys; sys.exit('no model at /nowhere.gguf')"]
    supervisor = Supervisor("child", lambda port: failing, health_path="/")
    with pytest.raises(RuntimeError, match=r"exited with code 1 while starting.*no model at /nowhere\.gguf"):
        supervisor.start()
    assert supervisor.status().state == "failed"


def test_the_child_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    parent = textwrap.dedent(
        f"""
        import sys, threading
        sys.path.insert(0, {str(REPO)!r})
        from llm_service.backends.supervisor import Supervisor
        from tests.test_llm_supervisor import http_server
        supervisor = Supervisor("child", http_server, health_path="/")
        supervisor.start()
        print(supervisor.status().pid, flush=True)
        threading.Event().wait()
        """
    )
    process = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    try:
        child = int(process.stdout.readline())
        assert not gone(child)
        process.kill()
        process.wait()
        wait_until(lambda: gone(child), "the child's death")
    finally:
        process.kill()


def test_the_child_gets_the_environment_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # as scripts/services.py sets it for the services
    supervisor = Supervisor("child", http_server, env={**server_env(), "SUITE_MARK": "child"}, health_path="/")
    supervisor.start()
    try:
        pid = supervisor.status().pid
        environ = dict(
            entry.split("=", 1) for entry in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in entry
        )
    finally:
        supervisor.close()
    assert environ["SUITE_MARK"] == "child"
    assert "OMP_WAIT_POLICY" not in environ  # llama.cpp's OpenMP threads keep their default spinning
