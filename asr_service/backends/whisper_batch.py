"""A few threads own the CTranslate2 Whisper model; decodes of concurrent requests go to it together.

:class:`BatchedWhisper` stands in for ``WhisperModel.model`` (a ``ctranslate2.models.Whisper``), so
faster-whisper's own decoding loop (windows, temperature fallback, timestamps) and the live fast path
run unchanged, each in its caller's thread. Every model call is queued to the workers, one per model
replica (``WhisperModel(num_workers=...)``), each taking the next call or batch as it frees:

- ``generate`` calls with the same options (prompt length and window) that are queued at the same moment
  run as one batch: on one two-thread replica, 8 beam-5 decodes together cost 0.27 s each against 0.80 s
  alone;
- ``encode`` (no gain from batching on CPU: its cost per window stays flat), ``detect_language`` and
  ``align`` run one at a time per worker, in order, so a live decode can slip in between them;
- calls made under :func:`urgent` (live transcription) go first, taking turns with the others; among
  them a started decode's ``generate`` goes before another's ``encode``.

Before a batch of ``generate`` calls a worker waits at most ``max_wait_s`` for callers that are busy
between two calls (see :meth:`BatchedWhisper.caller`); with no other caller it never waits, so a lone
request is not slower. When a batch fails, its calls are retried one by one, so only the bad one fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger("suite.asr.batch")
_local = threading.local()
_order = itertools.count()


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """Model calls made by this thread inside the block go before other callers' (live decodes)."""
    before = getattr(_local, "urgent", False)
    _local.urgent = True
    try:
        yield
    finally:
        _local.urgent = before


@dataclass(eq=False)  # calls are told apart by identity (their arrays cannot be compared)
class _Call:
    method: str
    key: tuple[Any, ...] | None
    """Calls with the same key may run as one batch; None: always alone."""
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    urgent: bool
    future: Future[Any] = field(default_factory=Future)
    order: int = field(default_factory=lambda: next(_order))

    @property
    def rank(self) -> tuple[bool, bool, int]:
        """Urgent calls first, and among them a decode that has started (``generate``) before a new one's
        ``encode``: a live final is not held back by the encodes of others due with it. Others in order, so
        that concurrent requests move in step and their ``generate`` calls meet."""
        return (not self.urgent, self.urgent and self.method != "generate", self.order)


def _frozen(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


class BatchedWhisper:
    """A ``ctranslate2.models.Whisper`` whose calls from many threads run on its workers, batched where it pays."""

    def __init__(self, model: Any, *, max_batch: int = 8, max_wait_s: float = 0.05, workers: int = 1) -> None:
        """Start the workers.

        Args:
            model: the ``ctranslate2.models.Whisper`` to own.
            max_batch: most ``generate`` calls in one batch.
            max_wait_s: longest wait for a busy caller's ``generate`` to join a batch.
            workers: calls (or batches) that run at once: the model's replicas (``num_workers``).
        """
        if max_batch < 1 or max_wait_s < 0 or workers < 1:
            raise ValueError("max_batch and workers must be >= 1, max_wait_s >= 0")
        self._model = model
        self.max_batch = max_batch
        self.workers = workers
        self.max_wait_s = max_wait_s
        self._pending: list[_Call] = []
        self._cond = threading.Condition()
        self._callers = 0
        self._running = 0
        """Calls a worker is running: their callers are busy, but not between two calls."""
        self._closed = False
        self._last_urgent = False
        self.generate_batches: Counter[int] = Counter()
        """How many ``generate`` batches of each size ran (for tests and logs)."""
        self._threads = [
            threading.Thread(target=self._run, name=f"whisper-batch-{n}", daemon=True) for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def __getattr__(self, name: str) -> Any:
        # is_multilingual, n_mels, device, ...: plain facts of the model
        return getattr(self._model, name)

    @property
    def alive(self) -> bool:
        """Whether the workers run."""
        return all(thread.is_alive() for thread in self._threads) and not self._closed

    @contextlib.contextmanager
    def caller(self) -> Iterator[None]:
        """Mark a decode in progress (between its model calls too), so batches wait a little for its calls."""
        with self._cond:
            self._callers += 1
        try:
            yield
        finally:
            with self._cond:
                self._callers -= 1
                self._cond.notify_all()

    def encode(self, features: Any, to_cpu: bool = False) -> Any:
        """The encoder's output for ``features`` (run alone)."""
        return self._submit("encode", None, (features,), {"to_cpu": to_cpu})

    def detect_language(self, *args: Any, **kwargs: Any) -> Any:
        """As ``ctranslate2.models.Whisper.detect_language`` (run alone)."""
        return self._submit("detect_language", None, args, kwargs)

    def align(self, *args: Any, **kwargs: Any) -> Any:
        """As ``ctranslate2.models.Whisper.align`` (run alone)."""
        return self._submit("align", None, args, kwargs)

    def generate(self, features: Any, prompts: list[list[int]], **kwargs: Any) -> list[Any]:
        """As ``ctranslate2.models.Whisper.generate``; batched with other callers' calls of the same options."""
        shape = tuple(features.shape)
        key = None
        if len(prompts) == 1 and shape[0] == 1:
            key = ("generate", shape, len(prompts[0]), _frozen(kwargs))
        return self._submit("generate", key, (features, prompts), kwargs)

    def close(self) -> None:
        """Stop the workers; calls still queued fail."""
        with self._cond:
            self._closed = True
            pending, self._pending = self._pending, []
            self._cond.notify_all()
        for call in pending:
            call.future.set_exception(RuntimeError("the model is closed"))
        for thread in self._threads:
            thread.join(5.0)

    def _submit(self, method: str, key: tuple[Any, ...] | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = _Call(method, key, args, kwargs, getattr(_local, "urgent", False))
        with self._cond:
            if self._closed:
                raise RuntimeError("the model is closed")
            self._pending.append(call)
            self._cond.notify_all()
        return call.future.result()

    def _next_group(self) -> list[_Call] | None:
        with self._cond:
            while True:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return None
                first = self._first()
                if first.key is None:
                    break
                if self._waited_for_batch(first):
                    first = self._first()  # a more urgent call may have come while waiting
                    break
            group = [first]
            if first.key is not None:
                others = sorted((c for c in self._compatible(first) if c is not first), key=lambda c: c.rank)
                group += others[: self.max_batch - 1]
            for call in group:
                self._pending.remove(call)
            self._running += len(group)
            if first.method == "generate":
                self.generate_batches[len(group)] += 1
            self._last_urgent = first.urgent
            return group

    def _waited_for_batch(self, first: _Call) -> bool:
        """Wait (lock held) up to ``max_wait_s`` for callers busy between two calls, who may be about to ask
        for the same as ``first``; False when another worker took every pending call meanwhile."""
        deadline = time.monotonic() + self.max_wait_s
        while len(self._pending) + self._running < self._callers and not self._closed:
            if len(self._compatible(first)) >= self.max_batch:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._cond.wait(left)
            if not self._pending:
                return False
            first = self._first()
        return bool(self._pending) and not self._closed

    def _first(self) -> _Call:
        """The call to serve next: urgent ones first, but after an urgent call a waiting other one gets its turn."""
        ranked = sorted(self._pending, key=lambda c: c.rank)
        if self._last_urgent and ranked[0].urgent:
            others = [c for c in ranked if not c.urgent]
            if others:
                return others[0]
        return ranked[0]

    def _compatible(self, first: _Call) -> list[_Call]:
        return [c for c in self._pending if c.key == first.key]

    def _run(self) -> None:
        while (group := self._next_group()) is not None:
            try:
                self._run_group(group)
            finally:
                with self._cond:
                    self._running -= len(group)

    def _run_group(self, group: list[_Call]) -> None:
        try:
            self._resolve(group)
        except Exception:  # one bad input must not fail its neighbours or stop the worker
            if len(group) > 1:
                log.warning("a batch of %d decodes failed; retrying them one by one", len(group))
            for call in group:
                if call.future.done():
                    continue
                try:
                    self._resolve([call])
                except Exception as exc:
                    call.future.set_exception(exc)

    def _resolve(self, group: list[_Call]) -> None:
        if len(group) == 1:
            call = group[0]
            call.future.set_result(getattr(self._model, call.method)(*call.args, **call.kwargs))
            return
        import ctranslate2

        stacked = np.ascontiguousarray(np.concatenate([np.asarray(c.args[0]) for c in group]))
        prompts = [c.args[1][0] for c in group]
        results = self._model.generate(ctranslate2.StorageView.from_array(stacked), prompts, **group[0].kwargs)
        for call, result in zip(group, results, strict=True):
            call.future.set_result([result])


class EncodeMemo:
    """A ``ctranslate2.models.Whisper`` that remembers its last few encoder outputs.

    Detecting the language of a file's first piece encodes that window, and decoding the piece encodes the
    same window again (faster-whisper's ``transcribe`` cannot take an encoder output): the second time is
    answered from here. Features are compared in full, so a hit is exactly the same input. An output answers
    once and is then forgotten: the memo spares a request's own second encode, it never carries one request's
    work over to another that sends the same audio later (which would flatter a benchmark that repeats files).
    """

    def __init__(self, model: Any, size: int = 8) -> None:
        self._model = model
        self._size = size
        self._memo: OrderedDict[bytes, tuple[np.ndarray, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: Any, to_cpu: bool = False) -> Any:
        """The encoder's output for ``features``, from memory when the same features were just encoded."""
        array = np.asarray(features)
        key = hashlib.blake2b(array.tobytes(), digest_size=16).digest()
        with self._lock:
            known = self._memo.pop(key, None)
        if known is not None and known[0].shape == array.shape and np.array_equal(known[0], array):
            self.hits += 1
            return known[1]
        output = self._model.encode(features, to_cpu=to_cpu)
        with self._lock:
            self._memo[key] = (array.copy(), output)
            while len(self._memo) > self._size:
                self._memo.popitem(last=False)
        return output
