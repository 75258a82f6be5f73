"""LLM backends behind :class:`ChatBackend`: both speak OpenAI's chat.completion shapes.

Adding a backend is one module plus one line in :data:`BACKENDS`; routes don't change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from common.registry import BackendRegistry

BACKENDS: BackendRegistry[ChatBackend] = BackendRegistry(
    __name__,
    llama_server="llama_server:LlamaServerBackend",
    openai_upstream="openai_upstream:OpenAIUpstreamBackend",
    fake="fake:FakeChatBackend",
)


@dataclass(frozen=True)
class ChatParams:
    """One chat request, validated and with defaults applied."""

    messages: list[dict[str, Any]]
    model: str | None
    """None: the backend's configured model; otherwise a name to pass through to an upstream."""
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Further OpenAI fields passed to backends that understand them (upstreams)."""

    def openai_kwargs(self) -> dict[str, Any]:
        """The set fields as ``chat.completions.create`` keyword arguments."""
        kwargs: dict[str, Any] = {"messages": self.messages, "max_tokens": self.max_tokens}
        for name in SAMPLING_FIELDS:
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = value
        return kwargs


SAMPLING_FIELDS = tuple(
    f.name for f in fields(ChatParams) if f.name not in ("messages", "model", "max_tokens", "extra")
)
"""The OpenAI knobs of :class:`ChatParams` (temperature, top_p, stop, tools, ...): the one list of them."""


def completion_from_chunks(chunks: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Put OpenAI ``chat.completion.chunk`` dicts together into the ``chat.completion`` a whole answer would be.

    Text fields of the deltas (content, reasoning) are joined, tool calls are joined by their index, logprobs
    concatenated; ``usage`` and the other top-level fields come from the chunks that carry them.
    """
    completion: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    calls: dict[int, dict[int, dict[str, Any]]] = {}
    for chunk in chunks:
        completion |= {key: value for key, value in chunk.items() if key not in ("choices", "object") and value}
        for piece in chunk.get("choices") or []:
            index = piece.get("index", 0)
            choice = choices.setdefault(
                index, {"index": index, "message": {"role": "assistant", "content": None}, "finish_reason": None}
            )
            message = choice["message"]
            for name, value in (piece.get("delta") or {}).items():
                if name == "tool_calls":
                    for call in value or []:
                        _join_tool_call(calls.setdefault(index, {}), call)
                elif isinstance(value, str) and name != "role":
                    message[name] = (message.get(name) or "") + value
                elif value is not None:
                    message[name] = value
            choice["finish_reason"] = piece.get("finish_reason") or choice["finish_reason"]
            if (piece.get("logprobs") or {}).get("content"):
                choice.setdefault("logprobs", {"content": []})["content"] += piece["logprobs"]["content"]
    for index, joined in calls.items():
        choices[index]["message"]["tool_calls"] = [joined[i] for i in sorted(joined)]
    for choice in choices.values():  # a whole answer's text is "" when empty, null only beside tool calls
        if choice["message"]["content"] is None and "tool_calls" not in choice["message"]:
            choice["message"]["content"] = ""
    return {**completion, "object": "chat.completion", "choices": [choices[i] for i in sorted(choices)]}


def _join_tool_call(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    """Add one streamed piece of a tool call (``id``/``type`` once, name and arguments in pieces)."""
    call = calls.setdefault(
        delta.get("index", 0), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
    )
    call["id"] = delta.get("id") or call["id"]
    call["type"] = delta.get("type") or call["type"]
    for part in ("name", "arguments"):
        call["function"][part] += (delta.get("function") or {}).get(part) or ""


class ChatBackend(Protocol):
    """What the engine needs from an LLM.

    A backend with ``slots = N`` gets at most N requests at once; the engine queues up to
    ``limits.max_waiting`` more and answers 429 past that. Without ``slots`` (a remote upstream that
    schedules for itself) requests pass straight through. ``alive()``, where present, is False while
    the backend cannot serve (e.g. its model server restarts): the service is then not ready.
    """

    slots: int | None

    def complete(self, params: ChatParams, client_gone: Callable[[], bool] | None = None) -> dict[str, Any]:
        """A whole ``chat.completion`` object.

        ``client_gone``, when given, may be polled while the answer is made: a backend that does stops
        generating once it says True and raises :class:`~common.errors.ClientGone`.
        """
        ...

    def stream(self, params: ChatParams, include_usage: bool) -> Iterator[dict[str, Any]]:
        """``chat.completion.chunk`` objects as they are generated; closing the iterator stops generation."""
        ...

    def health(self) -> dict[str, Any]:
        """Facts for /health (never raises)."""
        ...

    def close(self) -> None:
        """Free the model / connection pool."""
        ...
