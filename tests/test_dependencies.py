"""The locks: they agree with the top-level requirements, .venv holds exactly one of them, hashes are enforced,
and the code gives the OpenAI SDK only the SDK's own types."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import locks  # noqa: E402

PIP_INSTALL = [str(REPO / ".venv/bin/python"), "-m", "pip", "install"]


def test_every_lock_agrees_with_its_requirements() -> None:
    assert locks.check() == []


def test_a_package_in_the_requirements_but_not_the_lock_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in (REPO / "requirements").iterdir():
        (tmp_path / path.name).write_text(path.read_text())
    runtime = tmp_path / "runtime.in"
    runtime.write_text(runtime.read_text() + "\nleftpad-nowhere==1.0\n")
    dev = tmp_path / "dev.txt"
    dev.write_text(dev.read_text().replace("\nruff==", "\nruff-renamed=="))
    monkeypatch.setattr(locks, "REQUIREMENTS", tmp_path)
    problems = locks.check()
    assert any("leftpad-nowhere is in runtime.in but not in runtime.txt" in p for p in problems)
    assert any("ruff is in dev.in but not in dev.txt" in p for p in problems)


def test_the_venv_holds_exactly_its_lock() -> None:
    installed = (REPO / ".venv" / "suite-deps").read_text().strip()
    assert locks.freeze() == locks.expected(installed)


def test_the_default_set_has_no_torch() -> None:
    runtime, dev = locks.expected("runtime"), locks.expected("dev")
    for heavy in ("torch", "transformers", "sentence-transformers", "funasr"):
        assert heavy not in runtime and heavy not in dev
    assert locks.expected("production")["torch"].startswith("2.13.0")


def test_pip_refuses_a_file_whose_hash_differs(tmp_path: Path) -> None:
    lock = (REPO / "requirements" / "runtime.txt").read_text()
    start = lock.index("\nwsproto==") + 1
    entry = lock[start : lock.index("\n    #", start)]
    first_hash = entry.split("--hash=sha256:")[1][:64]
    tampered = tmp_path / "tampered.txt"
    tampered.write_text(entry.replace(first_hash, "0" * 64).replace(entry.split("--hash=sha256:")[2][:64], "1" * 64))
    result = subprocess.run(
        [*PIP_INSTALL, "--require-hashes", "--no-deps", "--target", str(tmp_path / "target"), "-r", str(tampered)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr
    assert not (tmp_path / "target" / "wsproto").exists()


def test_the_upstream_backend_builds_with_the_installed_sdk() -> None:
    from llm_service.backends.openai_upstream import OpenAIUpstreamBackend

    backend = OpenAIUpstreamBackend({"base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout_s": 7}, 1)
    try:
        timeout = backend._client.timeout
        assert (timeout.read, timeout.connect) == (7, 5)
    finally:
        backend.close()


def test_no_code_hands_the_sdk_an_http_library_of_its_own_choosing() -> None:
    """The SDK's HTTP library is its own business (it moved from httpx to httpx2): nothing here imports httpx2
    or builds the SDK with an httpx object."""
    offenders = []
    for path in REPO.glob("**/*.py"):
        if ".venv" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and n.split(".")[0] in ("httpx2", "httpcore2") for n in names):
                    offenders.append(f"{path}:{node.lineno} imports httpx2")
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(("OpenAI", "realtime.connect")):
                for keyword in node.keywords:
                    if keyword.arg in ("timeout", "http_client") and "httpx" in ast.unparse(keyword.value):
                        offenders.append(f"{path}:{node.lineno} passes httpx to the SDK")
    assert offenders == []
