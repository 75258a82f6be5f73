"""Boot services the way users do (scripts/services.py -> gunicorn) on free ports: for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from common.services import SERVICES
from llm_service.backends.supervisor import free_port  # the one free-port finder (stdlib only)

__all__ = ["REPO", "SERVICES_PY", "RunningService", "free_port", "fuzz", "launch", "metric_value", "write_config"]

REPO = Path(__file__).resolve().parent.parent
SERVICES_PY = REPO / "scripts" / "services.py"


@dataclass
class RunningService:
    """A started service: its URL, pid file and log."""

    name: str
    url: str
    run_dir: Path
    env: dict[str, str]

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        return int((self.run_dir / f"{self.name}.pid").read_text())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include ``labels`` (0 if none), from ``/metrics``."""
        return metric_value(urllib.request.urlopen(f"{self.url}/metrics", timeout=10).read().decode(), name, **labels)

    def wait_for_metric(self, name: str, at_least: float, timeout: float = 300, **labels: str) -> float:
        """Wait until the service reports ``name`` at ``at_least`` or more: an event the service exposes, not a
        sleep: it returns as soon as the value is reached, and ``timeout`` is generous so that a busy machine
        doesn't fail it. Raises ``TimeoutError`` if it never gets there. (``http_requests_in_progress`` counts
        the ``/metrics`` request that reads it.)"""
        deadline = time.monotonic() + timeout
        while (value := self.metric(name, **labels)) < at_least:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {name}{labels} stayed at {value} (< {at_least}) for {timeout} s")
            time.sleep(0.05)
        return value


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum the samples of metric ``name`` in a Prometheus text exposition whose labels include ``labels``."""
    total = 0.0
    for match in re.finditer(rf"^{re.escape(name)}(?:\{{(.*?)\}})? (\S+)$", text, re.M):
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match.group(2))
    return total


def write_config(base: str, path: Path, overrides: dict) -> Path:
    """Copy ``configs/<base>.yaml`` with ``overrides`` merged in (nested dicts merge, the rest replaces)."""

    def merge(into: dict, new: dict) -> dict:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value
        return into

    data = yaml.safe_load((REPO / "configs" / f"{base}.yaml").read_text())
    path.write_text(yaml.safe_dump(merge(data, overrides), allow_unicode=True))
    return path


@contextlib.contextmanager
def launch(
    name: str, run_dir: Path, env: dict[str, str] | None = None, timeout: float = 300, port: int | None = None
) -> Iterator[RunningService]:
    """Start service ``name`` with scripts/services.py on ``port`` (default: a free one); stop it (SIGTERM) on exit."""
    port = port or free_port()
    port_env = SERVICES[name].port_env
    full_env = {**os.environ, **(env or {}), "SUITE_RUN_DIR": str(run_dir), port_env: str(port)}
    command = [sys.executable, str(SERVICES_PY), "--wait", str(timeout)]
    started = subprocess.run([*command, "start", name], env=full_env, capture_output=True, text=True)
    if started.returncode != 0:
        raise RuntimeError(f"{name} did not start:\n{started.stdout}\n{started.stderr}")
    service = RunningService(name, f"http://127.0.0.1:{port}", run_dir, full_env)
    try:
        yield service
    finally:
        subprocess.run([*command, "stop", name], env=full_env, capture_output=True, text=True)


def fuzz(service: RunningService, examples: int, seed: str | None = "1") -> subprocess.CompletedProcess[str]:
    """Run schemathesis' coverage and fuzzing phases against a running service's ``/openapi.json``."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{service.url}/openapi.json",
        "-n",
        str(examples),
        "--request-timeout",
        "120",
        "--checks",
        "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--phases",
        "coverage,fuzzing",
    ]
    if seed is not None:
        command += ["--seed", seed]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)
