"""Proxy to any OpenAI-compatible server (vLLM, SGLang, Ollama, a cloud API) with the official SDK.

Connection errors are retried (only those); upstream errors map to clear JSON: unreachable -> 502,
timeout -> 504, the upstream's 4xx passed on with its message, its 5xx -> 502.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Callable, Generator, Iterator
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from common import jsonio
from common.errors import ApiError, BadRequest, UpstreamError, UpstreamTimeout
from llm_service.backends import ChatParams

log = logging.getLogger("suite.llm.upstream")
T = TypeVar("T")
PASSED_ON = {400, 404, 409, 413, 422, 429}


class UpstreamOptions(BaseModel):
    """``options:`` of the openai_upstream backend."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    """E.g. ``http://vllm:8000/v1``."""
    model: str
    """Model name to ask the upstream for (requests naming the service's model or an alias get this)."""
    api_key_env: str = "LLM_UPSTREAM_API_KEY"
    """Environment variable holding the upstream's key (never logged); unset sends a placeholder."""
    timeout_s: float = Field(default=120.0, gt=0)
    """Longest wait for any read from the upstream (first token, next chunk, whole answer)."""
    connect_timeout_s: float = Field(default=5.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    """Retries on connection errors only (never on a timeout or an answer)."""


class UpstreamStatusError(ApiError):
    """The upstream refused the request; carries its status and message."""

    type = "upstream_error"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, code=f"upstream_{status}")
        self.status = status  # type: ignore[misc]


class OpenAIUpstreamBackend:
    """Stateless proxy; requests run concurrently (the upstream schedules them)."""

    slots = None

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        import openai

        self._openai = openai
        self._transport = transport_library(openai)
        self.options = UpstreamOptions.model_validate(options)
        self._client = openai.OpenAI(
            base_url=self.options.base_url,
            timeout=openai.Timeout(self.options.timeout_s, connect=self.options.connect_timeout_s),
            max_retries=0,
            api_key=os.environ.get(self.options.api_key_env) or "not-needed",
        )

    def _params(self, params: ChatParams) -> dict[str, Any]:
        kwargs = params.openai_kwargs()
        kwargs["model"] = params.model or self.options.model
        if params.extra:
            kwargs["extra_body"] = params.extra
        return kwargs

    def complete(self, params: ChatParams, client_gone: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Forward a non-streaming request (the upstream schedules it; ``client_gone`` is not used)."""
        completion = self._call(lambda: self._client.chat.completions.create(**self._params(params)))
        return completion.model_dump()

    def stream(self, params: ChatParams, include_usage: bool) -> Generator[dict[str, Any], None, None]:
        """Forward a streaming request; closing the iterator closes the upstream connection.

        The SSE lines are parsed straight into dicts (orjson), not into the SDK's models: on a small box
        every token's parsing takes CPU from the model.
        """
        options = {"include_usage": True} if include_usage else None
        create = self._client.chat.completions.with_streaming_response.create
        opened = create(**self._params(params), stream=True, stream_options=options)
        response = self._call(opened.__enter__)
        try:
            for line in self._mapped(response.iter_lines):
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = jsonio.loads(data)
                if chunk.get("error"):
                    error = chunk["error"]
                    message = error.get("message") if isinstance(error, dict) else error
                    raise UpstreamError(f"the upstream failed mid-answer: {message}")
                yield chunk
        finally:
            opened.__exit__(None, None, None)

    def _mapped(self, start: Callable[[], Iterator[T]]) -> Iterator[T]:
        iterator = start()
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except self._openai.APIError as exc:
                raise self._translate(exc) from None
            except self._transport.HTTPError as exc:  # the SDK passes transport errors inside a stream on unwrapped
                url = self.options.base_url
                if isinstance(exc, self._transport.TimeoutException):
                    raise UpstreamTimeout(
                        f"the upstream at {url} sent nothing for {self.options.timeout_s:.0f} s"
                    ) from None
                raise UpstreamError(
                    f"the upstream at {url} broke off the answer: {exc}", code="upstream_disconnected"
                ) from None
            yield item

    def _call(self, request: Callable[[], T]) -> T:
        for attempt in range(self.options.retries + 1):
            try:
                return request()
            except self._openai.APITimeoutError as exc:
                raise self._translate(exc) from None
            except self._openai.APIConnectionError as exc:
                if attempt == self.options.retries:
                    raise self._translate(exc) from None
                log.warning("upstream connection failed (attempt %d): %s; retrying", attempt + 1, exc)
                time.sleep(0.2 * 2**attempt)
            except self._openai.APIError as exc:
                raise self._translate(exc) from None
        raise AssertionError("unreachable")

    def _translate(self, exc: Exception) -> ApiError:
        url = self.options.base_url
        if isinstance(exc, self._openai.APITimeoutError):
            return UpstreamTimeout(f"the upstream at {url} did not answer within {self.options.timeout_s:.0f} s")
        if isinstance(exc, self._openai.APIConnectionError):
            return UpstreamError(f"the upstream at {url} is unreachable: {exc}", code="upstream_unreachable")
        if isinstance(exc, self._openai.APIStatusError):
            message = f"upstream: {exc.message}"
            if _context_exceeded(exc.body):
                return BadRequest(
                    f"the conversation is too long for the model: {message}",
                    param="messages",
                    code="context_length_exceeded",
                )
            if exc.status_code in PASSED_ON:
                return UpstreamStatusError(exc.status_code, message)
            return UpstreamError(
                f"the upstream answered {exc.status_code}: {exc.message}", code=f"upstream_{exc.status_code}"
            )
        return UpstreamError(f"the upstream failed: {exc}")

    def health(self) -> dict[str, Any]:
        """Where requests go (never the key)."""
        return {"upstream": self.options.base_url, "upstream_model": self.options.model}

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def transport_library(openai: ModuleType) -> ModuleType:
    """The HTTP library the installed SDK is built on (httpx, or httpx2 in newer releases), found through the
    SDK's own ``Timeout`` type: its errors inside a stream come through unwrapped, and our code must not name
    a package the SDK only happens to depend on today."""
    return importlib.import_module(openai.Timeout.__module__.partition(".")[0])


def _context_exceeded(body: object) -> bool:
    """The upstream's error says the prompt does not fit its context (OpenAI/vLLM code, llama.cpp type)."""
    if not isinstance(body, dict):
        return False
    error = body.get("error", body)
    if not isinstance(error, dict):
        return False
    return error.get("code") == "context_length_exceeded" or error.get("type") == "exceed_context_size_error"
