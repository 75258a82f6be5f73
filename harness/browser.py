"""The voice console in a real browser: the suite booted for it, and Debian's Chromium with a fake microphone.

Playwright drives the system Chromium by path (it cannot download its own browsers here). The fake
microphone plays a WAV file into ``getUserMedia`` and loops it; :func:`mic_file` pads speech with
silence so that it is heard once per loop.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.launch import RunningService, free_port, launch
from harness.speech import wav_bytes

CHROMIUM = "/usr/bin/chromium"
MODEL_SERVICES = ("asr", "llm", "tts", "embedding")


def chromium_args(fake_audio: Path | None = None) -> list[str]:
    """Flags for headless Chromium on a machine without network, GPU or sandbox, with a fake microphone."""
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
    ]
    if fake_audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={fake_audio}")
    return args


@contextlib.contextmanager
def browser(playwright: Any, fake_audio: Path | None = None) -> Iterator[Any]:
    """A headless Chromium (a new, empty profile) whose microphone plays ``fake_audio`` in a loop."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=chromium_args(fake_audio),
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def mic_file(path: Path, speech: np.ndarray, rate: int, lead_s: float = 0.5, tail_s: float = 30.0) -> Path:
    """Write ``speech`` (float samples) with ``lead_s`` of silence before and ``tail_s`` after, as a 16-bit WAV."""
    silence = lambda seconds: np.zeros(int(seconds * rate), dtype=np.float32)  # noqa: E731
    path.write_bytes(wav_bytes(np.concatenate([silence(lead_s), speech.astype(np.float32), silence(tail_s)]), rate))
    return path


@contextlib.contextmanager
def console_suite(run_dir: Path, env: dict[str, str] | None = None) -> Iterator[dict[str, RunningService]]:
    """Boot the four services and the console under gunicorn, the services allowing the console's origin.

    ``env`` applies to every service (e.g. ``{"LLM__BACKEND": "fake"}`` or an API key per service).
    """
    console_port = free_port()
    origin = json.dumps([f"http://127.0.0.1:{console_port}", f"http://localhost:{console_port}"])
    with contextlib.ExitStack() as stack:
        running: dict[str, RunningService] = {}
        for name in MODEL_SERVICES:
            cors = {f"{name.upper()}__SERVER__CORS_ORIGINS": origin}
            running[name] = stack.enter_context(launch(name, run_dir, {**(env or {}), **cors}))
        urls = {f"{name.upper()}_URL": service.url for name, service in running.items()}
        running["console"] = stack.enter_context(launch("console", run_dir, {**(env or {}), **urls}, port=console_port))
        yield running
