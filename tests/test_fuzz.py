"""Schemathesis against each service's /openapi.json (small, fixed seed): no 5xx, responses match the schema."""

from __future__ import annotations

import httpx
import pytest

from common.services import SERVICES
from harness.launch import RunningService, fuzz

pytestmark = [pytest.mark.slow, pytest.mark.fuzz]


@pytest.mark.parametrize("name", [f"{name}_server" for name in SERVICES])
def test_openapi_fuzz_finds_no_server_errors(name: str, request: pytest.FixtureRequest) -> None:
    service: RunningService = request.getfixturevalue(name)
    done = fuzz(service, examples=8)
    assert done.returncode == 0, done.stdout[-6000:]
    assert "passed" in done.stdout
    assert httpx.get(f"{service.url}/readyz", timeout=10).status_code == 200  # still serving
