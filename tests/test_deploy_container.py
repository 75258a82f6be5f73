"""The suite's OCI image (deploy/Containerfile): deploy/build_image.sh builds it (a rebuild reuses podman's layers
and the llama-server cache), and every service in it becomes ready and answers one real request, run as
Kubernetes runs it: non-root, read-only root filesystem, no capabilities, key from the environment.

Run alone: ``pytest -m container tests/test_deploy_container.py -s`` (prints image size and cold starts).
The containers run one at a time on the host network, bound to 127.0.0.1 on free ports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

import core
from harness.launch import REPO, free_port
from harness.speech import assert_speech, parse_wav, word_error_rate

pytestmark = [
    pytest.mark.slow,
    pytest.mark.container,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman absent (apt-get install podman runc)"),
]

IMAGE = os.environ.get("SUITE_TEST_IMAGE", "localhost/ai-service-suite:latest")
KEY = uuid.uuid4().hex
READY_TIMEOUT_S = 300
LIBRIVOX = REPO / "tests" / "data" / "librivox"


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run podman with the project's podman settings (deploy/containers.conf unless CONTAINERS_CONF is set)."""
    env = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(REPO / "deploy" / "containers.conf"))}
    done = subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built (or rebuilt from cache) by the one documented command."""
    started = time.monotonic()
    built = subprocess.run(
        ["bash", str(REPO / "deploy" / "build_image.sh")],
        env={**os.environ, "IMAGE": IMAGE},
        capture_output=True,
        text=True,
        timeout=5400,
    )
    assert built.returncode == 0, built.stdout[-5000:] + built.stderr[-5000:]
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    print(f"\nimage {IMAGE}: {size / 1e9:.2f} GB, build_image.sh took {time.monotonic() - started:.0f} s")
    assert size < 8e9, f"the image grew to {size / 1e9:.1f} GB"
    return IMAGE


class Container:
    """One service's container, started detached; ``url`` is where it serves."""

    def __init__(self, image: str, service: str) -> None:
        self.service = service
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = f"suite-test-{service}-{uuid.uuid4().hex[:8]}"
        prefix = service.upper()
        env = {f"{prefix}__SERVER__HOST": "127.0.0.1", f"{prefix}_PORT": str(self.port)}
        if service != "console":
            env[f"{prefix}__SERVER__API_KEY"] = KEY
        flags = [f"--env={name}={value}" for name, value in env.items()]
        self.started = time.monotonic()
        podman(
            "run", "--detach", "--name", self.name, "--network", "host", "--read-only", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", *flags, image, service,
        )  # fmt: skip
        self.ready_after: float | None = None

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return (done.stdout + done.stderr)[-6000:]

    def wait_ready(self) -> float:
        """Seconds from ``podman run`` to ``/readyz`` 200; fails with the log if it never gets there."""
        deadline = self.started + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False).stdout.strip()
            assert state == "true", f"{self.service} exited while starting:\n{self.logs()}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    self.ready_after = time.monotonic() - self.started
                    return self.ready_after
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{self.service} not ready after {READY_TIMEOUT_S} s:\n{self.logs()}")

    def stop(self) -> int:
        """SIGTERM (as Kubernetes does), wait, and return the exit code."""
        podman("stop", "--time", "90", self.name, timeout=150, check=False)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", self.name, check=False).stdout.strip()
        podman("rm", "--force", self.name, check=False)
        return int(code or -1)


@pytest.fixture
def run(image: str) -> Iterator[Callable[[str], Container]]:
    """Start a service's container (one at a time); stop and remove it after the test."""
    started: list[Container] = []

    def start(service: str) -> Container:
        container = Container(image, service)
        started.append(container)
        print(f"\n{service}: ready {container.wait_ready():.1f} s after podman run")
        return container

    yield start
    for container in started:
        logs = container.logs()
        code = container.stop()
        print(f"{container.service} log tail:\n{logs[-1500:]}")
        assert code == 0, f"{container.service} exited {code} on SIGTERM:\n{logs}"


def check_locked_down(container: Container) -> None:
    """The service runs as the image's non-root user and cannot write outside /tmp."""
    done = podman("exec", container.name, "sh", "-c", "id -u; touch /opt/suite/x /x 2>&1; touch /tmp/x && echo tmp-ok")
    lines = done.stdout.splitlines()
    assert lines[0] == "10001", done.stdout
    assert lines[1:] == ["touch: cannot touch '/opt/suite/x': Read-only file system",
                         "touch: cannot touch '/x': Read-only file system", "tmp-ok"], done.stdout  # fmt: skip
    assert httpx.get(f"{container.url}/v1/models", timeout=10).status_code == 401, "the key from the env is enforced"


def test_embedding_container(run: Callable[[str], Container]) -> None:
    container = run("embedding")
    check_locked_down(container)
    with core.EmbeddingClient(container.url, api_key=KEY) as client:
        vector = client.embed("The suite runs in a container.")
        assert len(vector) == 384 and abs(sum(v * v for v in vector) - 1) < 1e-3


def test_asr_container(run: Callable[[str], Container]) -> None:
    container = run("asr")
    check_locked_down(container)
    reference = next(
        line.split("</s>")[0].removeprefix("<s>").strip()
        for line in (LIBRIVOX / "transcription").read_text().splitlines()
        if "(sense_and_sensibility_01_austen_64kb-0870)" in line
    )
    with core.ASRClient(container.url, api_key=KEY) as client:
        heard = client.transcribe(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0870.wav", language="en")
    assert word_error_rate(reference, heard) <= 0.2, heard


def test_tts_container(run: Callable[[str], Container]) -> None:
    container = run("tts")
    check_locked_down(container)
    with core.TTSClient(container.url, api_key=KEY) as client:
        samples, rate = parse_wav(client.synthesize("Hello from inside the container."))
    assert_speech(samples, rate, seconds=(1.0, 6.0))


def test_llm_container(run: Callable[[str], Container]) -> None:
    container = run("llm")
    check_locked_down(container)
    with core.LLMClient(container.url, api_key=KEY) as client:
        answer = client.chat([{"role": "user", "content": "What is the capital of France? One word."}], max_tokens=16)
    assert "paris" in answer.lower(), answer


def test_console_container(run: Callable[[str], Container]) -> None:
    container = run("console")
    page = httpx.get(f"{container.url}/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    openapi = json.loads(httpx.get(f"{container.url}/openapi.json", timeout=10).text)
    assert openapi["paths"], "the console serves its API description"


@pytest.fixture(scope="module", autouse=True)
def no_leftover_containers() -> Iterator[None]:
    """No test container outlives the module (a failed stop would keep its memory)."""
    yield
    names = podman("ps", "--all", "--format", "{{.Names}}", check=False).stdout.split()
    for name in names:
        if name.startswith("suite-test-"):
            podman("rm", "--force", name, check=False)
    assert not [name for name in names if name.startswith("suite-test-")], names


def test_image_holds_no_build_machine_configuration(image: str) -> None:
    """The build's pip config, CA bundle and wheel folders were mounted, not copied: only podman's empty mount
    points remain (0-byte files, empty directories), and no local file of the repository entered the image."""
    mounted = "/etc/pip.conf /etc/xdg/pip /root/.config/pip /opt/wheels /opt/pypi /opt/pypi-more /cache/builds"
    listing = podman(
        "run", "--rm", "--user", "0", "--entrypoint", "sh", image, "-c",
        f"for p in {mounted}; do [ -e $p ] && find $p -mindepth 0 \\( -type f -size +0 -o -type l \\) -print; done;"
        " ls -A /opt/suite",
    ).stdout.split()  # fmt: skip
    assert not [path for path in listing if path.startswith("/")], f"non-empty files from the build host: {listing}"
    assert {".venv", ".cache", "configs", "scripts"} <= set(listing), listing
    assert not {".git", "run", "tests", "docs", "benchmarks", "harness"} & set(listing), listing
