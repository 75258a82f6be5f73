"""The LLM engine: validate limits, pick the model name, admit requests to the backend's slots. No HTTP.

>>> engine = LlmEngine(LlmSettings.load()); engine.start(background=False)
>>> engine.complete(engine.params([{"role": "user", "content": "hi"}]))["choices"][0]["message"]["content"]
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from common.errors import BadRequest, ClientGone, ServiceUnavailable, model_not_found
from common.lifecycle import SingleModelEngine
from common.model_slot import Lease, LeasedStream
from llm_service.backends import ChatBackend, ChatParams
from llm_service.settings import LlmSettings
from llm_service.slots import SlotPool

log = logging.getLogger("suite.llm")


class LlmEngine(SingleModelEngine[ChatBackend]):
    """One chat backend; a local model serves ``slots`` requests at once behind a bounded wait queue."""

    settings: LlmSettings
    slot: SlotPool  # type: ignore[assignment]

    def __init__(self, settings: LlmSettings) -> None:
        super().__init__(settings)
        limits = settings.limits
        self.slot = SlotPool(
            settings.model_name, capacity=1, max_waiting=limits.max_waiting, wait_timeout=limits.wait_timeout_s
        )
        self._bounded = True

    def _load(self) -> None:
        super()._load()
        capacity = _slots(self._backend)
        self._bounded = capacity is not None
        self.slot.capacity = capacity or 1
        threads, waiting = self.settings.server.threads, self.settings.limits.max_waiting
        if self._bounded and threads <= waiting + self.slot.capacity:
            backend, self._backend = self._backend, None
            backend.close()
            raise ValueError(
                f"server.threads ({threads}) must exceed the backend's {self.slot.capacity} slots + "
                f"limits.max_waiting ({waiting}) so that requests past the queue get 429"
            )

    def params(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        extra: dict[str, Any] | None = None,
        **knobs: Any,
    ) -> ChatParams:
        """Check limits, apply defaults and resolve the model name.

        Raises:
            BadRequest: too many messages, too much text, or max_tokens over the limit.
            NotFound: a model this service does not serve (unless passing models through).
        """
        limits, defaults = self.settings.limits, self.settings.defaults
        if not messages:
            raise BadRequest("messages must contain at least one message", param="messages")
        if len(messages) > limits.max_messages:
            raise BadRequest(f"{len(messages)} messages; the limit is {limits.max_messages}", param="messages")
        chars = sum(len(str(m.get("content") or "")) for m in messages)
        if chars > limits.max_input_chars:
            raise BadRequest(
                f"the messages hold {chars} characters; the limit is {limits.max_input_chars}",
                param="messages",
                code="input_too_long",
            )
        max_tokens = max_tokens or defaults.max_tokens
        if max_tokens > limits.max_tokens:
            raise BadRequest(f"max_tokens is {max_tokens}; the limit is {limits.max_tokens}", param="max_tokens")
        for name, default in (("temperature", defaults.temperature), ("top_p", defaults.top_p)):
            if knobs.get(name) is None:
                knobs[name] = default
        return ChatParams(
            messages=messages, model=self._upstream_model(model), max_tokens=max_tokens, extra=extra or {}, **knobs
        )

    def _upstream_model(self, requested: str | None) -> str | None:
        if requested is None or requested in self.model_names:
            return None
        if self.settings.pass_through_models:
            return requested
        raise model_not_found(requested, self.model_names)

    def served_name(self, params: ChatParams) -> str:
        """The model name to report for ``params``."""
        return params.model or self.settings.model_name

    def complete(self, params: ChatParams, client_gone: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Generate a whole answer as an OpenAI ``chat.completion`` dict.

        ``client_gone``, when given, is polled while the answer is made: once the client has left,
        generation stops and :class:`~common.errors.ClientGone` is raised.

        Raises:
            BadRequest: the prompt does not fit the context.
            Overloaded / ServiceUnavailable: local model busy past the queue, or not loaded.
            UpstreamError / UpstreamTimeout: the upstream failed or was too slow.
        """
        backend, lease = self._acquire()
        started = time.perf_counter()
        outcome = "failed"
        try:
            completion = backend.complete(params, client_gone)
            outcome = "done"
        except ClientGone:
            outcome = "stopped"
            log.info("generation stopped after %.2f s: the client left", time.perf_counter() - started)
            raise
        finally:
            lease.release()
            self.observe_call(started, outcome)
        completion["model"] = self.served_name(params)
        return completion

    def stream(self, params: ChatParams, include_usage: bool = False) -> LeasedStream[dict[str, Any]]:
        """OpenAI ``chat.completion.chunk`` dicts as they are generated.

        The first chunk is produced before this returns, so a prompt that is too long or an upstream
        that is down raises here (a plain error response), not inside the stream. Closing the
        returned stream (the client left) stops generation and frees the model.
        """
        backend, lease = self._acquire()
        started = time.perf_counter()
        try:
            chunks = backend.stream(params, include_usage)
            first = next(chunks, None)
        except Exception:
            lease.release()
            self.observe_call(started, "failed")
            raise
        head = [] if first is None else [first]
        return LeasedStream(self._renamed(itertools.chain(head, chunks), params, started, chunks), lease)

    def _renamed(
        self, chunks: Iterator[dict[str, Any]], params: ChatParams, started: float, source: Iterator[dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        name = self.served_name(params)
        outcome = "stopped"
        try:
            for chunk in chunks:
                chunk["model"] = name
                yield chunk
            outcome = "done"
        except Exception:
            outcome = "failed"
            raise
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
            if outcome == "stopped":
                log.info("generation stopped after %.2f s: stream closed (client gone?)", time.perf_counter() - started)
            self.observe_call(started, outcome)

    def _acquire(self) -> tuple[ChatBackend, Lease]:
        self.ensure_ready()
        backend = self._backend
        assert backend is not None
        lease = self.slot.acquire() if self._bounded else Lease(lambda: None)
        return backend, lease

    def workers_alive(self) -> bool:
        """False while the backend cannot serve (its model server restarts): /readyz is then 503."""
        alive = getattr(self._backend, "alive", None)
        return alive() if alive is not None else True

    def ensure_ready(self) -> None:
        """Raise 503 unless the engine can serve, saying why.

        Raises:
            ServiceUnavailable: loading, failed, closed, or the backend's model server is restarting.
        """
        if self.status == "degraded":
            why = getattr(self._backend, "why_down", lambda: "not serving")()
            raise ServiceUnavailable(f"the model server is restarting: {why}", retry_after=2, code="restarting")
        super().ensure_ready()

    def describe(self) -> dict[str, Any]:
        """Seed-compatible ``{"model": ...}`` plus backend facts (slots busy/idle, requests waiting)."""
        facts: dict[str, Any] = {"model": self.settings.model_name, "backend": self.settings.backend}
        if self._backend is not None:
            facts.update(self._backend.health())
            if self._bounded:
                facts["waiting"] = self.slot.depth()
        return facts

    def slot_use(self) -> dict[str, int]:
        """Slots busy and idle (the backend's own count where it has one) and requests waiting, for metrics."""
        if not self._bounded:
            return {}
        use = getattr(self._backend, "slot_use", lambda: None)()
        if use is None:
            busy = self.slot.busy()
            use = {"busy": busy, "idle": max(self.slot.capacity - busy, 0)}
        return {"busy": use["busy"], "idle": use["idle"], "waiting": self.slot.depth()}


def _slots(backend: Any) -> int | None:
    """How many requests ``backend`` serves at once (None: no bound here, the upstream schedules)."""
    return getattr(backend, "slots", None)
