"""scripts/services.py edge cases that need no model: a busy port, stopping and checking what is not running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from common.services import SERVICES, SUITE_ENV_PREFIXES
from harness.launch import REPO, free_port


def _services(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "scripts" / "services.py"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def _env(run_dir: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SUITE_ENV_PREFIXES)}
    return {**clean, "SUITE_RUN_DIR": str(run_dir), **extra}


def test_a_port_in_use_gives_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _services("start", "tts", env=_env(tmp_path, TTS_PORT=str(port)))
    assert done.returncode == 1
    assert f"port {port} is already in use" in done.stderr and "TTS_PORT" in done.stderr
    assert not (tmp_path / "tts.pid").exists()


def test_stop_and_status_when_nothing_runs(tmp_path: Path) -> None:
    stopped = _services("stop", env=_env(tmp_path))
    assert stopped.returncode == 0 and stopped.stdout.count("not running") == len(SERVICES)
    status = _services("status", "embedding", env=_env(tmp_path, EMBEDDING_PORT="1"))
    assert status.returncode == 3 and "down" in status.stdout


def test_unknown_service_is_refused(tmp_path: Path) -> None:
    done = _services("start", "vision", env=_env(tmp_path))
    assert done.returncode == 2 and "unknown service" in done.stderr


def test_a_running_service_reports_the_port_it_runs_on(tmp_path: Path) -> None:
    port, other = free_port(), free_port()
    env = _env(tmp_path, ASR__BACKEND="fake", ASR_PORT=str(port))  # the fake backend: no weights to load
    started = _services("start", "asr", env=env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        again = _services("start", "asr", env={**env, "ASR_PORT": str(other)})
        assert again.returncode == 0, again.stderr
        assert (
            f"already running (pid {(tmp_path / 'asr.pid').read_text().strip()}) at http://127.0.0.1:{port}"
            in again.stdout
        )
        assert f"not at http://127.0.0.1:{other}" in again.stdout
        assert f"asr        http://127.0.0.1:{port}" in again.stdout  # the summary too
        status = _services("status", "asr", env={**env, "ASR_PORT": str(other)})
        assert status.returncode == 0 and f"port={port} " in status.stdout, status.stdout
    finally:
        stopped = _services("stop", "asr", env=env)
    assert stopped.returncode == 0 and not (tmp_path / "asr.url").exists()
