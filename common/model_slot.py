"""Exclusive use of a model that cannot batch: one call at a time, a bounded line of waiters.

Past ``max_waiting`` waiting callers, new ones get 429 with ``Retry-After`` at once instead of
queueing forever; a caller that waits longer than ``wait_timeout`` gets 503.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from common.errors import Overloaded, ServiceUnavailable

T = TypeVar("T")


class ModelSlot:
    """A lock with a bounded, observable queue in front of it."""

    def __init__(self, name: str, *, max_waiting: int, wait_timeout: float) -> None:
        self.name = name
        self.max_waiting = max_waiting
        self.wait_timeout = wait_timeout
        self._lock = threading.Lock()
        self._guard = threading.Lock()
        self._waiting = 0

    def depth(self) -> int:
        """Callers waiting for the model."""
        return self._waiting

    def in_use(self) -> int:
        """1 while a caller holds the model, else 0."""
        return int(self._lock.locked())

    def acquire(self) -> Lease:
        """Wait for the model and return a lease; release it exactly once (``Lease.release``).

        Raises:
            Overloaded: ``max_waiting`` callers already wait.
            ServiceUnavailable: not acquired within ``wait_timeout``.
        """
        with self._guard:
            if self._lock.locked() and self._waiting >= self.max_waiting:
                raise Overloaded(
                    f"{self.name} is busy and {self._waiting} requests are waiting; retry shortly", retry_after=2
                )
            self._waiting += 1
        try:
            acquired = self._lock.acquire(timeout=self.wait_timeout)
        finally:
            with self._guard:
                self._waiting -= 1
        if not acquired:
            raise ServiceUnavailable(
                f"waited {self.wait_timeout:.0f} s for {self.name}; retry later", code="queue_timeout"
            )
        return Lease(self._lock.release)


class Lease:
    """Holds a :class:`ModelSlot` until :meth:`release` (idempotent)."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        """Give the model back."""
        if self._release is not None:
            release, self._release = self._release, None
            release()


class LeasedStream(Generic[T]):
    """An iterator that releases its lease when exhausted, failed or closed (e.g. client gone).

    Werkzeug calls ``close()`` on a streamed response body when the client disconnects or the
    response ends, which also closes the wrapped generator, so work stops there.
    """

    def __init__(self, items: Iterator[T], lease: Lease) -> None:
        self._items = items
        self._lease = lease

    def __iter__(self) -> Iterator[T]:
        try:
            yield from self._items
        finally:
            self.close()

    def close(self) -> None:
        """Stop the underlying generator and release the model."""
        try:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()
        finally:
            self._lease.release()
