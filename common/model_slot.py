"""Exclusive use of a model that cannot batch: one call at a time, a bounded line of waiters.

Past ``max_waiting`` waiting callers, new ones get 429 with ``Retry-After`` at once instead of
queueing forever; a caller that waits longer than ``wait_timeout`` gets 503.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar

from common.errors import ClientGone, Overloaded, ServiceUnavailable

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class ModelSlot:
    """A lock with a bounded, observable queue in front of it.

    Two kinds of callers share it: requests (bounded line, 429 past it) and *priority* callers
    (live transcription's short decodes). When both kinds wait, they take turns, so neither starves.
    """

    def __init__(self, name: str, *, max_waiting: int, wait_timeout: float) -> None:
        self.name = name
        self.max_waiting = max_waiting
        self.wait_timeout = wait_timeout
        self._turn = threading.Condition()
        self._busy = False
        self._waiting = 0
        self._priority_waiting = 0
        self._last_was_priority = False

    def depth(self) -> int:
        """Callers waiting for the model."""
        return self._waiting + self._priority_waiting

    def in_use(self) -> int:
        """1 while a caller holds the model, else 0."""
        return int(self._busy)

    def priority_waiting(self) -> bool:
        """Whether a priority caller waits (a long holder should :meth:`Lease.yield_turn`)."""
        return self._priority_waiting > 0

    def acquire(self, *, priority: bool = False) -> Lease:
        """Wait for the model and return a lease; release it exactly once (``Lease.release``).

        Raises:
            Overloaded: ``max_waiting`` requests already wait (never for priority callers).
            ServiceUnavailable: not acquired within ``wait_timeout``.
        """
        with self._turn:
            if not priority and self._busy and self._waiting >= self.max_waiting:
                raise Overloaded(
                    f"{self.name} is busy and {self._waiting} requests are waiting; retry shortly", retry_after=2
                )
            if not self._take(priority, self.wait_timeout):
                raise ServiceUnavailable(
                    f"waited {self.wait_timeout:.0f} s for {self.name}; retry later", code="queue_timeout"
                )
        return Lease(self._release, self._yield_turn)

    def _take(self, priority: bool, timeout: float | None) -> bool:
        """Wait (holding ``_turn``) until it is this caller's turn and take the model; False on timeout."""
        if priority:
            self._priority_waiting += 1
        else:
            self._waiting += 1
        try:
            taken = self._turn.wait_for(lambda: self._may_take(priority), timeout)
            if taken:
                self._busy = True
                self._last_was_priority = priority
            return taken
        finally:
            if priority:
                self._priority_waiting -= 1
            else:
                self._waiting -= 1
            self._turn.notify_all()  # one waiter fewer can make another one's turn

    def _may_take(self, priority: bool) -> bool:
        if self._busy:
            return False
        others = self._waiting if priority else self._priority_waiting
        return others == 0 or self._last_was_priority != priority

    def _release(self) -> None:
        with self._turn:
            self._busy = False
            self._turn.notify_all()

    def _yield_turn(self) -> None:
        with self._turn:
            if not self._priority_waiting:
                return
            self._busy = False
            self._last_was_priority = False
            self._turn.notify_all()
            self._take(False, None)


class Lease:
    """Holds a :class:`ModelSlot` until :meth:`release` (idempotent)."""

    def __init__(self, release: Callable[[], None], yield_turn: Callable[[], None] | None = None) -> None:
        self._release: Callable[[], None] | None = release
        self._yield_turn = yield_turn

    def release(self) -> None:
        """Give the model back."""
        if self._release is not None:
            release, self._release = self._release, None
            release()

    def yield_turn(self) -> None:
        """Let a waiting priority caller use the model once, then hold it again (blocks meanwhile)."""
        if self._release is not None and self._yield_turn is not None:
            self._yield_turn()


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
            for item in self._items:
                yield item
                self._lease.yield_turn()  # between items the model is idle: let live decodes in
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


class ClosableStream(Protocol[T_co]):
    """Items made one by one, whose work stops (and whose model is freed) when closed."""

    def __iter__(self) -> Iterator[T_co]: ...

    def close(self) -> None: ...


def collect(stream: ClosableStream[T], client_gone: Callable[[], bool] | None = None) -> list[T]:
    """Everything ``stream`` makes, for a whole (not streamed) answer.

    With ``client_gone``, the client is looked at after each item: once it has left, the stream is closed
    (its work stops, the model is free for the next request) and :class:`ClientGone` is raised.
    """
    items: list[T] = []
    try:
        for item in stream:
            items.append(item)
            if client_gone is not None and client_gone():
                raise ClientGone("the client left before the answer was ready")
    finally:
        stream.close()
    return items
