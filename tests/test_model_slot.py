"""The model slot's turns: priority callers (live decodes) and requests alternate; long streams let them in."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from common.errors import Overloaded
from common.model_slot import LeasedStream, ModelSlot


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        event.wait(0.005)
    raise AssertionError("condition not reached")


def test_priority_and_requests_take_turns() -> None:
    slot = ModelSlot("m", max_waiting=4, wait_timeout=5)
    holder = slot.acquire()
    order: list[str] = []

    def take(name: str, priority: bool) -> None:
        lease = slot.acquire(priority=priority)
        order.append(name)
        lease.release()

    threads = [threading.Thread(target=take, args=("request", False))]
    threads[0].start()
    wait_until(lambda: slot.depth() == 1)
    threads.append(threading.Thread(target=take, args=("live", True)))
    threads[1].start()
    wait_until(lambda: slot.depth() == 2)
    holder.release()  # a request held it last: the live caller goes first though the request waited longer
    for thread in threads:
        thread.join(5)
    assert order == ["live", "request"]


def test_priority_callers_are_not_refused_when_the_line_is_full() -> None:
    slot = ModelSlot("m", max_waiting=0, wait_timeout=5)
    holder = slot.acquire()
    with pytest.raises(Overloaded):
        slot.acquire()
    got = threading.Event()
    thread = threading.Thread(target=lambda: (slot.acquire(priority=True).release(), got.set()))
    thread.start()
    wait_until(slot.priority_waiting)
    holder.release()
    thread.join(5)
    assert got.is_set() and slot.in_use() == 0


def test_a_long_stream_lets_a_waiting_live_decode_in_between_items() -> None:
    slot = ModelSlot("m", max_waiting=4, wait_timeout=5)
    live_done = threading.Event()
    seen: list[str] = []

    def items() -> Iterator[int]:
        for index in range(3):
            seen.append(f"item {index}")
            yield index

    stream = LeasedStream(items(), slot.acquire())
    iterator = iter(stream)
    next(iterator)

    def live() -> None:
        lease = slot.acquire(priority=True)
        seen.append("live")
        lease.release()
        live_done.set()

    thread = threading.Thread(target=live)
    thread.start()
    wait_until(slot.priority_waiting)
    next(iterator)  # between items the stream gives the model to the live decode
    assert live_done.wait(5)
    list(iterator)
    thread.join(5)
    assert seen == ["item 0", "live", "item 1", "item 2"]
    assert slot.in_use() == 0
