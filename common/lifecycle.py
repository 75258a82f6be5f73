"""Model lifetime shared by every engine: load in the background, report readiness, close."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from common.batching import BatchObserver
from common.errors import ServiceUnavailable, model_not_found
from common.model_slot import ModelSlot
from common.settings import ModelServiceSettings

log = logging.getLogger("suite.engine")


class EngineObserver(BatchObserver, Protocol):
    """Receives the engine's model calls and stopped streams (the app's metrics)."""

    def observe_stopped(self, queue: str) -> None: ...


class ModelEngine:
    """Base of every service engine. Subclasses implement :meth:`_load` and :meth:`describe`.

    ``start()`` loads in a thread so the HTTP server answers ``/healthz`` at once and
    ``/readyz`` turns 200 when loading finishes. Routes call :meth:`ensure_ready`.
    """

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._load_error: str | None = None
        self._loader: threading.Thread | None = None
        self._closed = False
        self.observer: EngineObserver | None = None
        """Receives one call per model call (the app's metrics); set before ``start()``."""

    def start(self, background: bool = True) -> None:
        """Begin loading models (idempotent)."""
        if self._loader is not None or self._ready.is_set():
            return
        if background:
            self._loader = threading.Thread(target=self._load_guarded, name="model-loader", daemon=True)
            self._loader.start()
        else:
            self._load_guarded()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until loaded; False on timeout or failed load."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self._load_error is not None:
                return False
            if deadline is not None and time.monotonic() > deadline:
                return False
        return True

    @property
    def status(self) -> str:
        """``loading``, ``ready``, ``failed``, ``degraded`` (a worker died) or ``closed``."""
        if self._closed:
            return "closed"
        if self._load_error is not None:
            return "failed"
        if not self._ready.is_set():
            return "loading"
        return "ready" if self.workers_alive() else "degraded"

    @property
    def load_error(self) -> str | None:
        """Why loading failed, if it did."""
        return self._load_error

    def ensure_ready(self) -> None:
        """Raise 503 unless the engine can serve.

        Raises:
            ServiceUnavailable: still loading, failed to load, a worker died, or closed.
        """
        status = self.status
        if status == "ready":
            return
        if status == "loading":
            raise ServiceUnavailable("models are still loading; retry shortly", code="loading")
        if status == "failed":
            raise ServiceUnavailable(f"model failed to load: {self._load_error}", retry_after=60, code="load_failed")
        raise ServiceUnavailable(f"engine is {status}", code=status)

    def workers_alive(self) -> bool:
        """Override when the engine owns worker threads."""
        return True

    def describe(self) -> dict[str, Any]:
        """Model names and other facts for ``/health`` (override)."""
        return {}

    def served_models(self) -> dict[str, list[str]]:
        """Model name -> its aliases, for ``GET /v1/models`` (override)."""
        return {}

    def queue_depths(self) -> dict[str, Callable[[], int]]:
        """Queue name -> function giving its current depth, for metrics (override)."""
        return {}

    def models_in_use(self) -> dict[str, Callable[[], int]]:
        """Queue name -> function giving 1 while its one-at-a-time model is taken, for metrics (override)."""
        return {}

    def observe_batch(self, queue: str, size: int, seconds: float, failed: bool) -> None:
        """Report one model call of ``size`` items to :attr:`observer`, if any."""
        if self.observer is not None:
            self.observer.observe_batch(queue, size, seconds, failed)

    def observe_stopped(self, queue: str) -> None:
        """Report a stream whose consumer left before its end to :attr:`observer`, if any."""
        if self.observer is not None:
            self.observer.observe_stopped(queue)

    def begin_shutdown(self) -> None:
        """The server was asked to stop: end long-lived work (e.g. live sessions) before requests drain."""

    def close(self) -> None:
        """Release models and workers (override and call super)."""
        self._closed = True

    def _load(self) -> None:
        raise NotImplementedError

    def _load_guarded(self) -> None:
        started = time.perf_counter()
        try:
            self._load()
        except Exception as exc:
            self._load_error = f"{type(exc).__name__}: {exc}"
            log.exception("model loading failed")
            return
        log.info("models loaded in %.1f s", time.perf_counter() - started)
        self._ready.set()


BackendT = TypeVar("BackendT")


class SingleModelEngine(ModelEngine, Generic[BackendT]):
    """An engine serving one backend under ``settings.model_name`` (and its aliases).

    The backend is built from the settings' registry (``settings.backends``) when loading; callers that
    need the model exclusively take :attr:`slot` (a bounded wait line: 429 past ``max_waiting``).
    """

    def __init__(self, settings: ModelServiceSettings) -> None:
        super().__init__()
        self.settings = settings
        self.slot = ModelSlot(
            settings.model_name, max_waiting=settings.limits.max_waiting, wait_timeout=settings.limits.wait_timeout_s
        )
        self._backend: BackendT | None = None

    def _load(self) -> None:
        settings = self.settings
        self._backend = settings.backends.create(settings.backend, settings.options, settings.cpu_threads)
        log.info("loaded %s (%s backend)", settings.model_name, settings.backend)

    @property
    def model_names(self) -> list[str]:
        """The served model and its aliases."""
        return [self.settings.model_name, *self.settings.aliases]

    def served_models(self) -> dict[str, list[str]]:
        """The served model with its aliases."""
        return {self.settings.model_name: list(self.settings.aliases)}

    def check_model(self, name: str | None) -> str:
        """The served model's name for ``name`` (the served name, an alias, or None).

        Raises:
            NotFound: any other name, listing the accepted ones.
        """
        if name is None or name in self.model_names:
            return self.settings.model_name
        raise model_not_found(name, self.model_names)

    def queue_depths(self) -> dict[str, Callable[[], int]]:
        """Requests waiting for the model (read through :attr:`slot` at each call: loading may replace it)."""
        return {self.settings.model_name: lambda: self.slot.depth()}

    def models_in_use(self) -> dict[str, Callable[[], int]]:
        """Callers holding the model (1 at most unless a batching engine's pool holds several)."""
        return {self.settings.model_name: lambda: self.slot.in_use()}

    def observe_call(self, started: float, outcome: str) -> None:
        """Report one model call that began at ``started`` (``time.perf_counter()``) and ended ``outcome``:
        ``done``, ``failed``, or ``stopped`` (a stream whose consumer left)."""
        self.observe_batch(self.settings.model_name, 1, time.perf_counter() - started, outcome == "failed")
        if outcome == "stopped":
            self.observe_stopped(self.settings.model_name)

    def close(self) -> None:
        """Free the model."""
        super().close()
        backend, self._backend = self._backend, None
        close = getattr(backend, "close", None)
        if close is not None:
            close()
