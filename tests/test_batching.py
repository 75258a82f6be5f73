"""The micro-batcher with a tiny deterministic model: merging, failures, bounds, shutdown."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from common.batching import MicroBatcher
from common.errors import Overloaded, ServiceUnavailable


class Recorder:
    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.delay = delay
        self.fail_on = fail_on
        self.observed: list[tuple[int, bool]] = []

    def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot process {self.fail_on}")
        return [item.upper() for item in items]

    def observe_batch(self, queue: str, size: int, seconds: float, failed: bool) -> None:
        self.observed.append((size, failed))


def test_results_come_back_in_order() -> None:
    model = Recorder()
    batcher = MicroBatcher(model, name="t", sort_key=len)
    try:
        assert batcher.run(["ccc", "a", "bb"]) == ["CCC", "A", "BB"]
        assert model.batches == [["a", "bb", "ccc"]]  # sorted by length inside the batch
    finally:
        batcher.close()


def test_concurrent_requests_share_batches() -> None:
    model = Recorder(delay=0.02)
    batcher = MicroBatcher(model, name="t", max_batch_size=16, max_wait_s=0.005, observer=model)
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda i: batcher.run([f"x{i}"]), range(64)))
        assert results == [[f"X{i}"] for i in range(64)]
        assert max(len(b) for b in model.batches) > 1
        assert len(model.batches) < 64
        assert sum(size for size, _ in model.observed) == 64
    finally:
        batcher.close()


def test_workers_run_batches_side_by_side() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def model(items: list[str]) -> list[str]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.03)
        with lock:
            running -= 1
        return [item.upper() for item in items]

    batcher = MicroBatcher(model, name="t", max_batch_size=4, workers=2)
    try:
        assert batcher.alive
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda i: batcher.run([f"x{i}"]), range(32)))
        assert results == [[f"X{i}"] for i in range(32)]
        assert most == 2
    finally:
        batcher.close()
    assert not batcher.alive


def test_batch_is_capped() -> None:
    model = Recorder()
    batcher = MicroBatcher(model, name="t", max_batch_size=4)
    try:
        assert len(batcher.run([str(i) for i in range(10)])) == 10
        assert max(len(b) for b in model.batches) <= 4
    finally:
        batcher.close()


def test_one_bad_item_fails_alone_and_worker_survives() -> None:
    model = Recorder(delay=0.01, fail_on="bad")
    batcher = MicroBatcher(model, name="t", max_wait_s=0.02, observer=model)
    try:
        futures = batcher.submit(["good", "bad", "fine"])
        assert futures[0].result(2) == "GOOD"
        assert futures[2].result(2) == "FINE"
        with pytest.raises(ValueError, match="cannot process bad"):
            futures[1].result(2)
        assert batcher.alive
        assert batcher.run(["next"]) == ["NEXT"]
        assert (3, True) in model.observed
    finally:
        batcher.close()


def test_full_queue_is_overloaded_then_recovers() -> None:
    release, taken = threading.Event(), threading.Event()

    def slow(items: list[str]) -> list[str]:
        taken.set()
        release.wait(5)
        return items

    batcher = MicroBatcher(slow, name="t", max_batch_size=1, max_queue=2)
    try:
        first = batcher.submit(["a"])  # taken by the worker, which now blocks
        assert taken.wait(5)
        queued = batcher.submit(["b", "c"])
        with pytest.raises(Overloaded) as info:
            batcher.submit(["d"])
        assert info.value.status == 429 and info.value.headers["Retry-After"] == "1"
        release.set()
        assert [f.result(2) for f in first + queued] == ["a", "b", "c"]
        assert batcher.run(["e"]) == ["e"]
    finally:
        release.set()
        batcher.close()


def test_timeout_cancels_queued_items() -> None:
    release = threading.Event()
    seen: list[str] = []

    taken = threading.Event()

    def slow(items: list[str]) -> list[str]:
        seen.extend(items)
        taken.set()
        release.wait(5)
        return items

    batcher = MicroBatcher(slow, name="t", max_batch_size=1)
    try:
        batcher.submit(["blocker"])
        assert taken.wait(5)  # the worker has taken the blocker
        with pytest.raises(TimeoutError):
            batcher.run(["late"], timeout=0.05)
        release.set()
        assert batcher.run(["after"], timeout=2) == ["after"]
        assert "late" not in seen  # the cancelled item never reached the model
    finally:
        release.set()
        batcher.close()


def test_close_fails_waiting_items_and_refuses_new_ones() -> None:
    release, taken = threading.Event(), threading.Event()
    batcher = MicroBatcher(lambda items: (taken.set(), release.wait(5), items)[2], name="t", max_batch_size=1)
    batcher.submit(["running"])
    assert taken.wait(5)
    waiting = batcher.submit(["waiting"])[0]
    threading.Timer(0.1, release.set).start()
    batcher.close()
    with pytest.raises(ServiceUnavailable):
        waiting.result(1)
    with pytest.raises(ServiceUnavailable):
        batcher.submit(["new"])
    assert not batcher.alive


def test_batches_group_texts_of_similar_length_from_the_queue() -> None:
    release, taken = threading.Event(), threading.Event()
    model = Recorder()

    def gated(items: list[str]) -> list[str]:
        taken.set()
        release.wait(5)
        return model(items)

    batcher = MicroBatcher(gated, name="t", max_batch_size=4, sort_key=len)
    try:
        batcher.submit(["first"])  # taken by the worker, which now blocks while the queue fills
        assert taken.wait(5)
        texts = [("s" if i % 2 == 0 else "l" * 40) * (1 + i // 2) for i in range(8)]  # short, long, short...
        futures = batcher.submit(texts)
        release.set()
        assert [f.result(2) for f in futures] == [t.upper() for t in texts]
        assert (
            [sorted(b, key=len) for b in model.batches[1:]]
            == [
                sorted(texts[0::2], key=len),  # the oldest (short) text with the other short ones
                sorted(texts[1::2], key=len),
            ]
        )
    finally:
        release.set()
        batcher.close()


def test_the_oldest_item_is_never_passed_over() -> None:
    release, taken = threading.Event(), threading.Event()
    model = Recorder()

    def gated(items: list[str]) -> list[str]:
        taken.set()
        release.wait(5)
        return model(items)

    batcher = MicroBatcher(gated, name="t", max_batch_size=2, sort_key=len, length_window=8)
    try:
        batcher.submit(["first"])
        assert taken.wait(5)
        long_one = batcher.submit(["x" * 100])[0]
        batcher.submit(["a", "b", "c", "d", "e", "f"])
        release.set()
        assert long_one.result(2) == "X" * 100
        assert "x" * 100 in model.batches[1]  # served next despite the closer-matching short items
    finally:
        release.set()
        batcher.close()
