"""Schemathesis against each service's /openapi.json (small, fixed seed): no 5xx, responses match the schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers import RunningService

pytestmark = [pytest.mark.slow, pytest.mark.fuzz]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def fuzz(service: RunningService, examples: int, seed: str | None = "1") -> subprocess.CompletedProcess[str]:
    """Run schemathesis' coverage and fuzzing phases against a running service."""
    command = [
        str(SCHEMATHESIS),
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


@pytest.mark.parametrize("name", ["embedding_server", "asr_server", "llm_server", "tts_server"])
def test_openapi_fuzz_finds_no_server_errors(name: str, request: pytest.FixtureRequest) -> None:
    service: RunningService = request.getfixturevalue(name)
    done = fuzz(service, examples=8)
    assert done.returncode == 0, done.stdout[-6000:]
    assert "passed" in done.stdout
    assert httpx.get(f"{service.url}/readyz", timeout=10).status_code == 200  # still serving
