"""A tiny deterministic chat backend for fast route and error tests (``backend: fake``); no model, no weights.

It answers with the words of the last user message (or ``reply``), one chunk per word, cut at
``max_tokens`` words, in OpenAI's ``chat.completion`` shapes. It never replaces the real model in
behaviour tests. Options it does not know are ignored, so any config can switch to it with
``LLM__BACKEND=fake``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.model_slot import collect
from llm_service.backends import ChatParams, completion_from_chunks


class FakeChatOptions(BaseModel):
    """``options:`` of the fake backend."""

    model_config = ConfigDict(extra="ignore")

    reply: str | None = None
    """Fixed answer; None echoes the last user message."""
    chunk_delay_s: float = Field(default=0.0, ge=0)
    """Pause before each chunk (to test disconnects and queues)."""
    fail_after: int | None = Field(default=None, ge=0)
    """Raise after this many chunks (to test a stream that fails midway)."""


class FakeChatBackend:
    """Echoes words; one request at a time, like a local model."""

    slots = 1

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        self.options = FakeChatOptions.model_validate(options)

    def _words(self, params: ChatParams) -> tuple[list[str], str, int]:
        user = [m for m in params.messages if m.get("role") == "user"]
        text = self.options.reply if self.options.reply is not None else str(user[-1]["content"] if user else "")
        words = text.split()
        cut = words[: params.max_tokens]
        return (
            cut,
            "length" if len(words) > len(cut) else "stop",
            sum(len(str(m.get("content"))) for m in params.messages),
        )

    def complete(self, params: ChatParams, client_gone: Callable[[], bool] | None = None) -> dict[str, Any]:
        """A whole ``chat.completion``: its own stream put together (stopped when the client goes)."""
        return completion_from_chunks(collect(self.stream(params, include_usage=True), client_gone))

    def stream(self, params: ChatParams, include_usage: bool) -> Generator[dict[str, Any], None, None]:
        """``chat.completion.chunk`` dicts, one per word, then the finish (and usage if asked)."""
        words, finish, prompt = self._words(params)
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time())}
        for index, word in enumerate(words):
            if self.options.fail_after is not None and index >= self.options.fail_after:
                raise RuntimeError("fake backend failure")
            time.sleep(self.options.chunk_delay_s)
            delta = {"content": word if index == 0 else f" {word}"}
            yield {**base, "model": "fake", "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        yield {**base, "model": "fake", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        if include_usage:
            usage = {"prompt_tokens": prompt, "completion_tokens": len(words), "total_tokens": prompt + len(words)}
            yield {**base, "model": "fake", "choices": [], "usage": usage}

    def health(self) -> dict[str, Any]:
        """Says it is the fake."""
        return {"fake": True}

    def close(self) -> None:
        """Nothing to free."""
