"""ASR batching: concurrent decodes share model calls, yet each caller gets its own answer and failures stay alone.

The worker's plumbing is tested on a tiny stand-in for the CTranslate2 model; what users see (texts of
concurrent requests, a bad upload among good ones, a client that leaves mid-batch) on the real Whisper model.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from faster_whisper.transcribe import Segment as WhisperSegment

from asr_service.backends import whisper_window
from asr_service.backends.whisper_batch import BatchedWhisper, EncodeMemo, urgent
from asr_service.backends.whisper_window import WindowedEncoder, encoder_window
from asr_service.engine import AsrEngine
from common.audio import AudioError
from harness.launch import launch
from harness.speech import librivox_clips, long_speech, wav_bytes


class TinyWhisper:
    """Stands in for ``ctranslate2.models.Whisper``: ``generate`` answers each row with its sum, fails on NaN."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s = delay_s
        self.encodes = 0
        self.calls: list[str] = []

    def encode(self, features: Any, to_cpu: bool = False) -> np.ndarray:
        self.encodes += 1
        return np.asarray(features) * 2

    def generate(self, features: Any, prompts: list[list[int]], **kwargs: Any) -> list[float]:
        rows = np.asarray(features)
        time.sleep(self.delay_s)
        if np.isnan(rows).any():
            raise ValueError("NaN in the input")
        return [float(row.sum()) + prompt[0] for row, prompt in zip(rows, prompts, strict=True)]

    def detect_language(self, features: Any) -> str:
        self.calls.append("detect_language")
        return "en"


def together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads started at once; each one's result, or the exception it raised."""
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:  # handed back to the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def registered(model: BatchedWhisper, call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with model.caller():
            return call()

    return run


def row(value: float) -> np.ndarray:
    return np.full((1, 2, 3), value, dtype=np.float32)


def test_a_batch_answers_each_caller_with_its_own_result() -> None:
    model = BatchedWhisper(TinyWhisper(), max_batch=8, max_wait_s=1.0)
    try:
        calls = [registered(model, lambda i=i: model.generate(row(i), [[100 * i]], beam_size=5)) for i in range(6)]
        results = together(calls)
        assert results == [[6.0 * i + 100 * i] for i in range(6)]
        assert max(model.generate_batches) > 1  # they did share a model call
    finally:
        model.close()


def test_different_options_never_share_a_batch() -> None:
    model = BatchedWhisper(TinyWhisper(), max_batch=8, max_wait_s=0.2)
    try:
        calls = [registered(model, lambda i=i: model.generate(row(1), [[0]], beam_size=1 + i % 2)) for i in range(4)]
        assert together(calls) == [[6.0]] * 4
        assert sum(size * count for size, count in model.generate_batches.items()) == 4
        assert max(model.generate_batches) <= 2
    finally:
        model.close()


def test_one_bad_input_fails_alone_and_the_worker_keeps_serving() -> None:
    model = BatchedWhisper(TinyWhisper(), max_batch=8, max_wait_s=1.0)
    try:
        values = [1.0, float("nan"), 2.0, 3.0]
        results = together([registered(model, lambda v=v: model.generate(row(v), [[0]])) for v in values])
        assert isinstance(results[1], ValueError)
        assert results[0] == [6.0] and results[2] == [12.0] and results[3] == [18.0]
        assert model.alive
        assert model.generate(row(4), [[0]]) == [24.0]
    finally:
        model.close()


def test_two_workers_answer_every_caller_and_run_side_by_side() -> None:
    class Counted(TinyWhisper):
        def __init__(self) -> None:
            super().__init__(delay_s=0.1)
            self.running = self.most = 0
            self.lock = threading.Lock()

        def generate(self, features: Any, prompts: list[list[int]], **kwargs: Any) -> list[float]:
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                return super().generate(features, prompts, **kwargs)
            finally:
                with self.lock:
                    self.running -= 1

    tiny = Counted()
    model = BatchedWhisper(tiny, max_batch=2, max_wait_s=0.05, workers=2)
    try:
        calls = [
            registered(model, lambda i=i: (model.encode(row(i)), model.generate(row(i), [[0]], beam_size=1 + i % 3)))
            for i in range(12)
        ]
        results = together(calls)
        assert [r[1] for r in results] == [[6.0 * i] for i in range(12)]
        assert sum(size * count for size, count in model.generate_batches.items()) == 12
        assert tiny.most == 2 and model.alive
    finally:
        model.close()
    assert not model.alive


def test_a_lone_caller_does_not_wait_for_a_batch() -> None:
    model = BatchedWhisper(TinyWhisper(delay_s=0), max_batch=8, max_wait_s=5.0)
    try:
        started = time.monotonic()
        with model.caller():
            assert model.generate(row(1), [[0]]) == [6.0]
        assert time.monotonic() - started < 1.0
    finally:
        model.close()


def test_urgent_calls_go_first_but_others_get_their_turn() -> None:
    tiny = TinyWhisper(delay_s=0.2)
    model = BatchedWhisper(tiny, max_batch=1, max_wait_s=0)
    order: list[str] = []

    def call(name: str, hurry: bool) -> None:
        if hurry:
            with urgent():
                model.generate(row(1), [[0]])
        else:
            model.generate(row(1), [[0]])
        order.append(name)

    try:
        blocker = threading.Thread(target=call, args=("first", False))
        blocker.start()
        time.sleep(0.05)  # the worker is busy with "first"; then two others and two urgent ones queue
        threads = [threading.Thread(target=call, args=(n, n.startswith("live"))) for n in ("file", "live1", "live2")]
        for thread in threads:
            thread.start()
            time.sleep(0.02)
        for thread in [blocker, *threads]:
            thread.join(10)
        assert order == ["first", "live1", "file", "live2"]
    finally:
        model.close()


def test_the_encode_memo_answers_the_same_features_once_only() -> None:
    tiny = TinyWhisper()
    memo = EncodeMemo(tiny, size=2)
    first = memo.encode(row(1))
    assert memo.encode(row(1)) is first and tiny.encodes == 1
    memo.encode(row(1))  # answered once only: encoded again
    memo.encode(row(2))
    memo.encode(row(3))
    memo.encode(row(1))  # pushed out by two newer windows
    assert tiny.encodes == 5 and memo.hits == 1
    assert memo.detect_language(row(1)) == "en"  # everything else goes to the model


def test_a_short_piece_is_encoded_in_a_short_window_and_only_padding_is_cut() -> None:
    class Shapes(TinyWhisper):
        def __init__(self) -> None:
            super().__init__()
            self.frames: list[int] = []

        def encode(self, features: Any, to_cpu: bool = False) -> np.ndarray:
            self.frames.append(np.asarray(features).shape[-1])
            return super().encode(features, to_cpu)

    shapes = Shapes()
    model = WindowedEncoder(shapes)
    padded = np.zeros((1, 80, 3000), dtype=np.float32)
    padded[..., :400] = 1.0  # 4 s of speech, then faster-whisper's padding
    with encoder_window(4.0):
        out = model.encode(padded)
    with encoder_window(28.6):  # too long for a shorter window
        model.encode(padded)
    model.encode(padded)  # no window set: as faster-whisper asked
    assert shapes.frames == [1000, 3000, 3000]  # 4 s + 1.5 s, in 5 s steps: 10 s
    assert np.array_equal(np.asarray(out)[..., :400], padded[..., :400] * 2)


def test_a_piece_that_loops_in_a_short_window_is_decoded_again_in_the_full_one(
    asr_engine: AsrEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    windows: list[int | None] = []

    class LoopsInShortWindows:
        """Says a piece's sentence twice when its window is short, as Whisper sometimes does."""

        def __init__(self, sentence: str) -> None:
            self.sentence = sentence

        def transcribe(self, audio: np.ndarray, **kwargs: Any) -> tuple[Iterator[Any], None]:
            def segments() -> Iterator[Any]:
                frames = getattr(whisper_window._local, "frames", None)
                windows.append(frames)
                text = self.sentence * (2 if frames is not None and "tide" in self.sentence else 1)
                yield WhisperSegment(0, 0, 0.0, 4.0, text, [1], -0.1, 1.0, 0.0, None, 0.0)

            return segments(), None

    backend = asr_engine._backend
    four_seconds = [(0, 4 * 16000)]
    texts = {}
    for sentence in (" the tide came in over the sand", " a quiet morning"):
        monkeypatch.setattr(backend, "_model", LoopsInShortWindows(sentence))
        texts[sentence] = [seg.text for seg in backend._pieces(np.zeros(4 * 16000), four_seconds, "en", {}, None)]
    assert texts == {
        " the tide came in over the sand": [" the tide came in over the sand"],
        " a quiet morning": [" a quiet morning"],
    }
    assert windows == [1000, None, 1000]  # the loop decoded again in 30 s; the other piece once


# -- the real model --


@pytest.fixture(scope="module")
def clips() -> list[bytes]:
    return [path.read_bytes() for path, _ in librivox_clips()]


def test_concurrent_requests_each_get_their_own_text(asr_engine: AsrEngine, clips: list[bytes]) -> None:
    alone = [asr_engine.transcribe(data).text for data in clips[:4]]
    batched = asr_engine._backend._batched  # type: ignore[union-attr]
    before = sum(count for size, count in batched.generate_batches.items() if size > 1)
    together_texts = together([lambda d=d: asr_engine.transcribe(d).text for d in clips[:4]])
    assert together_texts == alone
    assert sum(count for size, count in batched.generate_batches.items() if size > 1) > before


def test_a_bad_upload_among_concurrent_requests_fails_alone(asr_engine: AsrEngine, clips: list[bytes]) -> None:
    uploads = [clips[0], b"RIFF not really a wav file" * 100, clips[1], clips[2]]
    results = together([lambda d=d: asr_engine.transcribe(d).text for d in uploads])
    assert isinstance(results[1], AudioError) and results[1].status == 400
    assert all(isinstance(text, str) and text for text in (results[0], results[2], results[3]))


@pytest.mark.slow
def test_a_client_that_leaves_mid_batch_frees_its_slot(tmp_path: Path) -> None:
    long_wav = wav_bytes(long_speech()[0])
    env = {"ASR__OPTIONS__BATCH_SIZE": "2", "ASR__LIMITS__MAX_WAITING": "0"}
    with launch("asr", tmp_path, env=env) as service:
        staying = threading.Thread(
            target=lambda: httpx.post(f"{service.url}/asr", files={"file": ("s.wav", long_wav)}, timeout=300)
        )
        with httpx.Client(base_url=service.url, timeout=300) as client:
            with client.stream("POST", "/asr/stream", files={"file": ("l.wav", long_wav)}) as leaving:
                staying.start()
                service.wait_for_metric("engine_model_in_use", 2)  # both slots of the batch are taken
                refused = httpx.post(f"{service.url}/asr", files={"file": ("a.wav", long_wav)}, timeout=30)
                assert refused.status_code == 429
                assert "partial_text" in next(leaving.iter_lines())
            # the streamed client has left mid-way: its decode stops and its slot is free for the next request
            service.wait_for_metric("engine_streams_stopped_total", 1)
            short = librivox_clips()[0][0].read_bytes()
            assert client.post("/asr", files={"file": ("a.wav", short)}).status_code == 200
        staying.join(300)


class Overlapping:
    """Wraps a live decode function and records how many of its calls ran at once, at most."""

    def __init__(self, decode: Callable[[np.ndarray, str | None, bool], tuple[str, str | None]]) -> None:
        self.decode = decode
        self.running = self.most = 0
        self.lock = threading.Lock()

    def __call__(
        self, samples: np.ndarray, language: str | None, may_be_final: bool, said_before: str = ""
    ) -> tuple[str, str | None]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self.decode(samples, language, may_be_final)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("seed", range(3))
def test_live_sessions_decoded_in_batches_never_lose_a_final(seed: int) -> None:
    from asr_service.live_decoder import LiveDecoder
    from asr_service.live_limits import LiveLimits
    from common.model_slot import Lease
    from harness.speech import read_wav, trimmed
    from tests.shared import drain
    from tests.test_asr_live_invariant import CoveringDecoder, build_stream, frames

    clips = [(trimmed(read_wav(path)), text.split()) for path, text in librivox_clips()]
    rng = random.Random(seed)
    stream = build_stream(rng.sample(clips, 3), rng, unspaced=False)
    decode = Overlapping(CoveringDecoder(stream, rng, give_up=1.0, real_time_factor=0.3, speed=20.0))
    decoder = LiveDecoder(decode, LiveLimits(max_sessions=4), lambda: Lease(lambda: None))
    decoder.allow_batches(4)
    try:
        sessions = [decoder.open(language="en") for _ in range(4)]
        for frame in frames(stream.pcm, rng):  # the same speech to all four, in step: finals fall due together
            for session in sessions:
                session.feed(frame)
            time.sleep(len(frame) / 2 / 16000 / 20)
        for session in sessions:
            session.finish()
        words = " ".join(w for _, w in stream.words)
        for session in sessions:
            events = drain(session, timeout=60)
            assert not any("error" in e for e in events), events
            assert " ".join(e["text"] for e in events if e.get("final")) == words, "words lost"
    finally:
        decoder.stop()
    assert decode.most > 1, "finals due together were decoded together"
