"""Micro-batching: merge items from concurrent requests into one model call.

A worker thread takes what is queued (waiting at most ``max_wait_s`` after the oldest item for
more to arrive), calls the model once and resolves one ``Future`` per item. A batcher has one worker,
or several for a model that can run batches side by side (each takes its own batch). With a
``sort_key`` (a length), a batch is chosen from a window of the queue: the oldest item plus the queued
items closest to it in length, so a model that pads to the longest text pads less; the oldest item
always goes first, so nothing waits forever. When a batch raises, its items are retried one by one so
only the bad item fails; the worker keeps serving. The queue is bounded: past ``max_queue`` items,
``submit`` raises :class:`~common.errors.Overloaded` (429).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Generic, Protocol, TypeVar

from common.errors import Overloaded, ServiceUnavailable

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

log = logging.getLogger("suite.batching")


class BatchObserver(Protocol):
    """Receives one call per model batch (e.g. :class:`common.metrics.ServiceMetrics`)."""

    def observe_batch(self, queue: str, size: int, seconds: float, failed: bool) -> None: ...


class MicroBatcher(Generic[ItemT, ResultT]):
    """Bounded queue plus worker threads that call ``process`` on batches of items."""

    def __init__(
        self,
        process: Callable[[list[ItemT]], Sequence[ResultT]],
        *,
        name: str,
        max_batch_size: int = 32,
        max_wait_s: float = 0.002,
        max_queue: int = 1024,
        sort_key: Callable[[ItemT], int] | None = None,
        length_window: int = 4,
        observer: BatchObserver | None = None,
        workers: int = 1,
    ) -> None:
        """Start the workers.

        Args:
            process: the model call, one result per item in order.
            name: queue name for errors and metrics.
            max_batch_size: most items per call.
            max_wait_s: how long the oldest item waits for others to join it.
            max_queue: most items waiting; past it ``submit`` raises ``Overloaded``.
            sort_key: an item's length; with it, batches group items of similar length.
            length_window: with ``sort_key``, batches are picked from the oldest
                ``length_window * max_batch_size`` queued items.
            observer: told about every batch.
            workers: batches run at once (``process`` must then be safe to call from several threads).
        """
        if max_batch_size < 1 or max_queue < 1 or max_wait_s < 0 or length_window < 1 or workers < 1:
            raise ValueError("max_batch_size, max_queue, length_window and workers must be >= 1, max_wait_s >= 0")
        self.name = name
        self._process = process
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._max_queue = max_queue
        self._sort_key = sort_key
        self._window = length_window * max_batch_size
        self._observer = observer
        self._queue: deque[tuple[ItemT, Future[ResultT], float]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._workers = [
            threading.Thread(target=self._run, name=f"batcher-{name}-{i}", daemon=True) for i in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    @property
    def alive(self) -> bool:
        """True while every worker thread runs; ``/readyz`` reports a dead worker."""
        return all(worker.is_alive() for worker in self._workers) and not self._closed

    def depth(self) -> int:
        """Items waiting (not yet taken by the worker)."""
        return len(self._queue)

    def submit(self, items: Sequence[ItemT]) -> list[Future[ResultT]]:
        """Queue ``items`` together and return one future per item, in order.

        Raises:
            Overloaded: the queue cannot take all of them.
            ServiceUnavailable: the batcher is closed.
        """
        now = time.monotonic()
        futures: list[Future[ResultT]] = [Future() for _ in items]
        with self._cond:
            if self._closed:
                raise ServiceUnavailable(f"{self.name} is shutting down", code="shutting_down")
            if len(self._queue) + len(items) > self._max_queue:
                raise Overloaded(f"{self.name} queue is full ({len(self._queue)} items waiting); retry shortly")
            self._queue.extend(zip(items, futures, [now] * len(items), strict=True))
            self._cond.notify()
        return futures

    def run(self, items: Sequence[ItemT], timeout: float | None = None) -> list[ResultT]:
        """Submit ``items`` and wait for all results.

        Raises:
            Overloaded, ServiceUnavailable: as :meth:`submit`.
            TimeoutError: not done within ``timeout`` seconds (queued items are cancelled).
            Exception: whatever the model call raised for this batch.
        """
        futures = self.submit(items)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            return [f.result(None if deadline is None else max(0.0, deadline - time.monotonic())) for f in futures]
        except FutureTimeout:
            for f in futures:
                f.cancel()
            raise TimeoutError(f"{self.name}: no result within {timeout} s") from None

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking items, fail what is still queued, and stop the worker."""
        with self._cond:
            self._closed = True
            pending = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for _, future, _ in pending:
            if future.set_running_or_notify_cancel():
                future.set_exception(ServiceUnavailable(f"{self.name} shut down", code="shutting_down"))
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def _take_batch(self) -> list[tuple[ItemT, Future[ResultT]]] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            deadline = self._queue[0][2] + self._max_wait_s
            while len(self._queue) < self._max_batch_size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            key = self._sort_key
            taken = self._popleft(self._max_batch_size) if key is None else self._pick(key)
            if self._queue:  # more than one batch waits: another worker may take the next
                self._cond.notify()
            # skip items whose caller gave up
            return [(item, future) for item, future, _ in taken if future.set_running_or_notify_cancel()]

    def _popleft(self, count: int) -> list[tuple[ItemT, Future[ResultT], float]]:
        return [self._queue.popleft() for _ in range(min(count, len(self._queue)))]

    def _pick(self, key: Callable[[ItemT], int]) -> list[tuple[ItemT, Future[ResultT], float]]:
        """The oldest item and the window's items nearest its length, shortest first (lock held)."""
        size = self._max_batch_size
        if len(self._queue) <= size:
            taken = self._popleft(size)
        else:
            window = self._popleft(self._window)
            lengths = [key(entry[0]) for entry in window]
            order = sorted(range(len(window)), key=lengths.__getitem__)
            oldest_at = order.index(0)
            # the run of `size` neighbours in length order that holds the oldest item, least spread first
            starts = range(max(0, oldest_at - size + 1), min(oldest_at, len(order) - size) + 1)
            start = min(starts, key=lambda s: lengths[order[s + size - 1]] - lengths[order[s]])
            chosen = set(order[start : start + size])
            taken = [window[i] for i in sorted(chosen)]
            self._queue.extendleft(reversed([window[i] for i in range(len(window)) if i not in chosen]))
        return sorted(taken, key=lambda entry: key(entry[0]))

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            if batch:
                self._call(batch)

    def _call(self, batch: list[tuple[ItemT, Future[ResultT]]]) -> None:
        started = time.perf_counter()
        failed = False
        try:
            self._resolve(batch)
        except Exception:  # one bad item must not fail its neighbours, kill the worker or hang callers
            failed = True
            log.exception("%s: batch of %d failed; retrying its items one by one", self.name, len(batch))
            for pair in batch:
                if pair[1].done():
                    continue
                try:
                    self._resolve([pair])
                except Exception as exc:
                    pair[1].set_exception(exc)
        finally:
            if self._observer is not None:
                self._observer.observe_batch(self.name, len(batch), time.perf_counter() - started, failed)

    def _resolve(self, batch: list[tuple[ItemT, Future[ResultT]]]) -> None:
        results = self._process([item for item, _ in batch])
        if len(results) != len(batch):
            raise RuntimeError(f"model returned {len(results)} results for {len(batch)} items")
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
