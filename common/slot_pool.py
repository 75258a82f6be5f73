"""Admission to a model that serves N requests at once: N slots and a bounded line of waiters.

Past ``max_waiting`` waiting callers, new ones get 429 with ``Retry-After`` at once instead of
queueing forever; a caller that waits longer than ``wait_timeout`` gets 503. The LLM's slots and the
ASR's batched requests use it; :class:`common.model_slot.ModelSlot` is the one-at-a-time kind.
"""

from __future__ import annotations

import threading
import time

from common.errors import Overloaded, ServiceUnavailable
from common.model_slot import Lease


class SlotPool:
    """A counting semaphore with a bounded, observable queue in front of it."""

    def __init__(self, name: str, *, capacity: int, max_waiting: int, wait_timeout: float) -> None:
        self.name = name
        self.capacity = capacity
        """Slots; may be raised once the backend says how many it has (before requests arrive)."""
        self.max_waiting = max_waiting
        self.wait_timeout = wait_timeout
        self._changed = threading.Condition()
        self._busy = 0
        self._waiting = 0

    def depth(self) -> int:
        """Callers waiting for a slot."""
        return self._waiting

    def busy(self) -> int:
        """Slots in use."""
        return self._busy

    def in_use(self) -> int:
        """Slots taken (the kit's ``engine_model_in_use`` metric)."""
        return self.busy()

    def acquire(self) -> Lease:
        """Wait for a free slot and return a lease; release it exactly once (``Lease.release``).

        Raises:
            Overloaded: every slot is busy and ``max_waiting`` callers already wait.
            ServiceUnavailable: no slot within ``wait_timeout``.
        """
        with self._changed:
            if self._busy >= self.capacity:
                if self._waiting >= self.max_waiting:
                    raise Overloaded(
                        f"{self.name}: all {self.capacity} slots are busy and {self._waiting} requests are waiting; "
                        "retry shortly",
                        retry_after=2,
                    )
                self._waiting += 1
                deadline = time.monotonic() + self.wait_timeout
                try:
                    while self._busy >= self.capacity:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise ServiceUnavailable(
                                f"waited {self.wait_timeout:.0f} s for {self.name}; retry later", code="queue_timeout"
                            )
                        self._changed.wait(left)
                finally:
                    self._waiting -= 1
            self._busy += 1
        return Lease(self._release)

    def _release(self) -> None:
        with self._changed:
            self._busy -= 1
            self._changed.notify()
