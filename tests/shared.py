"""What the tests share: polling with a deadline, live-audio framing, and the docs' examples run as written."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np

from harness.launch import REPO, RunningService
from harness.speech import pcm16

DOCS = REPO / "docs"
T = TypeVar("T")


def wait_until(condition: Callable[[], bool], what: str, limit: float = 60, poll: float = 0.05) -> None:
    """Poll ``condition`` every ``poll`` s; the limit is only a safety net against a hang, not a speed check.

    Raises:
        AssertionError: ``what`` did not happen within ``limit`` seconds.
    """
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen")
        time.sleep(poll)


def collect_until(receive: Callable[[], T], last: Callable[[T], bool], what: str, limit: float = 120) -> list[T]:
    """Call ``receive`` (which blocks with its own timeout) until it returns an item for which ``last`` is true.

    Returns every item received, that one included.

    Raises:
        AssertionError: the last item had not come within ``limit`` seconds.
    """
    deadline = time.monotonic() + limit
    items: list[T] = []
    while not items or not last(items[-1]):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come within {limit:.0f} s; got {items[-3:]}")
        items.append(receive())
    return items


def leave_before_the_answer(request: httpx.Request, until: Callable[[], bool]) -> None:
    """Send ``request`` on a connection of its own, wait until ``until()``, then close it unread."""
    url = request.url
    head = [f"{request.method} {url.raw_path.decode()} HTTP/1.1", f"Host: {url.host}:{url.port}"]
    head += [f"{name}: {value}" for name, value in request.headers.items() if name.lower() != "host"]
    with socket.create_connection((url.host, url.port), timeout=30) as connection:
        connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + request.read())
        wait_until(until, "the answer under way")


def gone(pid: int) -> bool:
    """No such process, or only its zombie is left."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def pcm(samples: np.ndarray) -> bytes:
    """Float samples as the 16-bit PCM a live session is sent."""
    return pcm16(samples)


def irregular_frames(data: bytes, seed: int = 0) -> list[bytes]:
    """Split PCM into frames of random whole-sample lengths (20 to 300 ms)."""
    rng = np.random.default_rng(seed)
    frames, position = [], 0
    while position < len(data):
        size = int(rng.integers(320, 4800)) * 2
        frames.append(data[position : position + size])
        position += size
    return frames


@dataclass(frozen=True)
class DocExample:
    """One ```bash curl block of a docs page: the command, its HTTP method and URL path."""

    command: str
    method: str
    path: str


def doc_page(service: str) -> Path:
    """The reference page of ``service`` (``docs/asr.md`` ...)."""
    return DOCS / f"{service}.md"


def doc_curls(service: str, default_port: int) -> list[DocExample]:
    """The curl examples (```bash blocks) of the service's docs page that call its default port."""
    blocks = re.findall(r"```bash\n(.*?)```", doc_page(service).read_text(), flags=re.S)
    examples = []
    for block in blocks:
        command = block.strip()
        if not command.startswith("curl") or f"127.0.0.1:{default_port}" not in command:
            continue
        words = shlex.split(command.replace("\\\n", " "))
        url = next(w for w in words if w.startswith("http://"))
        explicit = words[words.index("-X") + 1] if "-X" in words else None
        has_body = any(w in {"-d", "-F", "--data", "--form"} for w in words)
        method = explicit or ("POST" if has_body else "GET")
        path = re.sub(r"^http://[^/]+", "", url).split("?", 1)[0] or "/"
        examples.append(DocExample(command, method, path))
    return examples


def doc_code_blocks(service: str, language: str) -> list[str]:
    """The ```<language> blocks of the service's docs page."""
    return re.findall(rf"```{language}\n(.*?)```", doc_page(service).read_text(), flags=re.S)


def run_doc_curls(service: RunningService, default_port: int, cwd: Path = REPO) -> int:
    """Run each curl example of the service's docs page against ``service`` in ``cwd``; fail on any error.

    A command must print something, or write the file its ``--output`` names. Returns how many ran.
    """
    port = service.url.rsplit(":", 1)[1]
    examples = doc_curls(service.name, default_port)
    for example in examples:
        command = example.command.replace(f":{default_port}", f":{port}")
        output = re.search(r"--output\s+(\S+)", command)
        if output:
            (cwd / output.group(1)).unlink(missing_ok=True)
        done = subprocess.run(
            ["bash", "-c", f"{command} --fail-with-body --silent --show-error"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        if output:
            assert (cwd / output.group(1)).stat().st_size > 1000, command
        else:
            assert done.stdout.strip(), command
    return len(examples)


def drain(session: Any, timeout: float = 20) -> list[dict[str, Any]]:
    """Every event until ``done``, ``going_away`` or an error (each within ``timeout`` s of the previous one)."""
    return collect_until(
        lambda: session.events.get(timeout=timeout),
        lambda event: event.get("event") in ("done", "going_away") or "error" in event,
        "the session's done",
        limit=max(120, timeout * 6),
    )
