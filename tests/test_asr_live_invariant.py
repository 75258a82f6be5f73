"""The live session never loses a final: property-style runs over real speech with a fake, randomly slow decoder.

Real read speech (LibriVox) and our own TTS, joined into long single-breath sentences, go through the
real VAD at random frame sizes and paces; the fake decoder finds which words a decode's samples
cover, takes a random time, and, like Whisper on a looping short window, sometimes gives up on a
partial (no text). Whatever the timing, every word must come out in exactly one final, in order,
and ``done.text`` must join the finals.
"""

from __future__ import annotations

import base64
import itertools
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from scipy.signal import resample_poly

from asr_service.backends.whisper_utterance import repeats
from asr_service.live_decoder import LiveDecoder
from asr_service.live_limits import LiveLimits
from asr_service.realtime import RealtimeAdapter
from asr_service.vad import WINDOW, StreamingVad
from common.model_slot import ModelSlot
from harness.speech import LONG_CHINESE as CHINESE
from harness.speech import LONG_ENGLISH as ENGLISH
from harness.speech import librivox_clips, read_wav, trimmed
from tests.shared import drain, pcm

RATE = 16000


@dataclass
class Stream:
    """16 kHz PCM of several sentences, and where each reference word is spoken (sample positions)."""

    pcm: bytes
    samples: np.ndarray
    words: list[tuple[int, str]]
    unspaced: bool

    def heard(self, start: int, end: int) -> list[str]:
        """The reference words spoken within [start, end)."""
        return [word for position, word in self.words if start <= position < end]


def build_stream(sentences: list[tuple[np.ndarray, list[str]]], rng: random.Random, *, unspaced: bool) -> Stream:
    """Sentences with 1-1.6 s of room tone between them; the end comes 0-1.5 s after the last one."""
    noise = np.random.default_rng(rng.randrange(1 << 30))
    pieces, spans = [noise.normal(0, 0.001, int(0.6 * RATE))], []
    position = len(pieces[0])
    for index, (speech, _) in enumerate(sentences):
        spans.append((position, position + len(speech)))
        tail = rng.uniform(0.0, 1.5) if index == len(sentences) - 1 else rng.uniform(1.0, 1.6)
        # room tone under the speech too: no stretch of the stream (our TTS's silent pauses, a sentence used
        # twice) is the same as another, so the fake decoder can tell where any decoded piece comes from
        pieces += [speech + noise.normal(0, 0.001, len(speech)), noise.normal(0, 0.001, int(tail * RATE))]
        position += len(speech) + len(pieces[-1])
    ints = (np.clip(np.concatenate(pieces), -1, 1) * 32767).astype("<i2")
    samples = ints.astype(np.float32) / 32768.0
    probabilities = StreamingVad().feed(samples)
    words: list[tuple[int, str]] = []
    for (start, end), (_, tokens) in zip(spans, sentences, strict=True):
        windows = [i for i in range(start // WINDOW, end // WINDOW) if probabilities[i] >= 0.9]
        for k, token in enumerate(tokens):  # spread over the windows that surely are speech
            words.append((windows[(2 * k + 1) * len(windows) // (2 * len(tokens))] * WINDOW + WINDOW // 2, token))
    return Stream(ints.tobytes(), samples, words, unspaced)


class CoveringDecoder:
    """Answers with the reference words a decode's samples cover; may give up on partials.

    A decode takes ``real_time_factor`` x its audio's length (randomly 0.5-1.5 x that), in the time of a
    stream played ``speed`` x faster than real time; at least ``min_delay_s``.
    """

    def __init__(
        self, stream: Stream, rng: random.Random, give_up: float, real_time_factor: float, speed: float
    ) -> None:
        self.stream = stream
        self.rng = rng
        self.give_up = give_up
        self.seconds_per_second = real_time_factor / speed
        self.lock = threading.Lock()

    def locate(self, samples: np.ndarray) -> int:
        head = samples[:64]
        candidates = np.flatnonzero(self.stream.samples == head[0])
        found = [int(start) for start in candidates if np.array_equal(self.stream.samples[start : start + 64], head)]
        assert len(found) == 1, "decoded samples are not part of the stream, or not one place in it"
        return found[0]

    def __call__(
        self, samples: np.ndarray, language: str | None, may_be_final: bool, said_before: str = ""
    ) -> tuple[str, str | None]:
        with self.lock:
            delay = len(samples) / RATE * self.seconds_per_second * self.rng.uniform(0.5, 1.5)
            gives_up = not may_be_final and self.rng.random() < self.give_up
        time.sleep(max(delay, 0.001))
        if gives_up:
            return "", language  # as Whisper's short window does on a loop, for a partial
        start = self.locate(samples)
        separator = "" if self.stream.unspaced else " "
        return separator.join(self.stream.heard(start, start + len(samples))), language or "en"


def frames(data: bytes, rng: random.Random) -> list[bytes]:
    """Whole-sample frames of a size drawn per run (10-400 ms), each varying by up to half."""
    base = rng.choice([160, 320, 1600, 3200, 6400])
    out, position = [], 0
    while position < len(data):
        size = 2 * max(1, int(base * rng.uniform(0.5, 1.5)))
        out.append(data[position : position + size])
        position += size
    return out


def run_session(stream: Stream, seed: int, *, realtime: bool = False) -> tuple[list[str], str]:
    """Feed one run; returns (final texts, done text)."""
    rng = random.Random(seed)
    speed = rng.choice([None, 100.0, 50.0])  # None: as fast as it comes
    real_time_factor = rng.choice([0.02, 0.1, 0.3])  # Whisper base on 2 cores: about 0.1
    fake = CoveringDecoder(stream, rng, rng.choice([0.0, 1.0, 1.0]), real_time_factor, speed or 200.0)
    slot = ModelSlot("fake", max_waiting=4, wait_timeout=30)
    limits = LiveLimits(
        max_sessions=1,
        partial_interval_s=rng.choice([0.1, 0.2, 0.5]),
        end_silence_s=rng.choice([0.4, 0.5]),
        pad_after_s=rng.choice([0.1, 0.3]),
    )
    decoder = LiveDecoder(fake, limits, lambda: slot.acquire(priority=True))
    try:
        session = decoder.open(language="zh" if stream.unspaced else "en")
        sent: list[dict[str, Any]] = []
        adapter = RealtimeAdapter(session, sent.append, "fake") if realtime else None
        for frame in frames(stream.pcm, rng):
            session.feed(frame)
            if speed is not None:
                time.sleep(len(frame) / 2 / RATE / speed)
        session.finish()
        events = drain(session, timeout=60)
        assert not any("error" in e for e in events), events
        finals = [e for e in events if e.get("final")]
        for earlier, later in itertools.pairwise(finals):
            assert earlier["end"] <= later["start"], "finals overlap or come out of order"
        if adapter is None:
            return [e["text"] for e in finals], events[-1]["text"]
        for event in events:
            adapter.on_session_event(event)
        completed = [e["transcript"] for e in sent if e["type"].endswith("transcription.completed")]
        started = [e for e in sent if e["type"] == "input_audio_buffer.speech_started"]
        stopped = [e for e in sent if e["type"] == "input_audio_buffer.speech_stopped"]
        assert len(started) == len(stopped) == len(completed), "every announced utterance gets its transcript"
        steps = ["speech_started", "speech_stopped", "committed", "completed"]
        for item in {e["item_id"] for e in sent if "item_id" in e}:
            kinds = [e["type"].rsplit(".", 1)[-1] for e in sent if e.get("item_id") == item]
            assert [k for k in kinds if k in steps] == steps, (item, kinds)
        return [text for text in completed if text], events[-1]["text"]
    finally:
        decoder.stop()


@pytest.fixture(scope="module")
def english_streams(tts_engine: Any) -> list[tuple[np.ndarray, list[str]]]:
    """Long single-breath English sentences: LibriVox clips joined two by two, and our TTS's sentences joined."""
    clips = [(trimmed(read_wav(path)), text.split()) for path, text in librivox_clips()]
    joined = [(np.concatenate([a[0], b[0]]), a[1] + b[1]) for a, b in zip(clips[::2], clips[1::2], strict=False)]
    spoken = [_tts(tts_engine, text, "en") for text in ENGLISH]
    joined.append((np.concatenate([s for s, _ in spoken]), [w for _, words in spoken for w in words]))
    return [*joined, *spoken]


@pytest.fixture(scope="module")
def chinese_streams(tts_engine: Any) -> list[tuple[np.ndarray, list[str]]]:
    spoken = [_tts(tts_engine, text, "zh") for text in CHINESE]
    return [(np.concatenate([s for s, _ in spoken]), [w for _, words in spoken for w in words]), *spoken]


def _tts(engine: Any, text: str, language: str) -> tuple[np.ndarray, list[str]]:
    speech = engine.synthesize(text, style="style2" if language == "zh" else "style1")
    samples = trimmed(resample_poly(speech.samples, RATE, speech.sample_rate).astype(np.float32))
    tokens = [c for c in text if c.isalnum()] if language == "zh" else text.split()
    return samples, tokens


ENGLISH_RUNS, CHINESE_RUNS, REALTIME_RUNS = 100, 40, 40


def check_runs(streams: list, runs: int, first_seed: int, *, unspaced: bool, realtime: bool = False) -> None:
    """``runs`` random runs over two of ``streams`` each: every reference word in exactly one final, in order."""
    separator = "" if unspaced else " "
    for seed in range(first_seed, first_seed + runs):
        rng = random.Random(seed)
        stream = build_stream(rng.sample(streams, 2), rng, unspaced=unspaced)
        finals, done = run_session(stream, seed, realtime=realtime)
        assert separator.join(finals) == separator.join(w for _, w in stream.words), f"seed {seed}: words lost"
        if not realtime:
            assert done == separator.join(finals)


def test_every_english_word_comes_out_in_exactly_one_final(english_streams: list) -> None:
    check_runs(english_streams, ENGLISH_RUNS, 0, unspaced=False)


def test_every_chinese_character_comes_out_in_exactly_one_final(chinese_streams: list) -> None:
    check_runs(chinese_streams, CHINESE_RUNS, 1000, unspaced=True)


def test_realtime_transcripts_carry_every_word(english_streams: list) -> None:
    check_runs(english_streams, REALTIME_RUNS, 2000, unspaced=False, realtime=True)


def test_a_language_set_after_the_session_opened_reaches_every_decode() -> None:
    calls: list[str | None] = []

    def decode(
        samples: np.ndarray, language: str | None, may_be_final: bool, said_before: str = ""
    ) -> tuple[str, str | None]:
        calls.append(language)
        return "对", language or "ja"

    slot = ModelSlot("fake", max_waiting=4, wait_timeout=10)
    decoder = LiveDecoder(decode, LiveLimits(max_sessions=1), lambda: slot.acquire(priority=True))
    try:
        session = decoder.open(sample_rate=24000)
        sent: list[dict[str, Any]] = []
        adapter = RealtimeAdapter(session, sent.append, "fake")
        adapter.on_client_event(
            {"type": "session.update", "session": {"input_audio_transcription": {"language": "zh"}}}
        )
        speech = trimmed(read_wav(librivox_clips()[1][0]))[: RATE // 2]  # a short first utterance
        audio = np.concatenate([np.zeros(RATE // 2, np.float32), speech, np.zeros(RATE, np.float32)])
        pcm_24k = pcm(resample_poly(audio, 3, 2))
        adapter.on_client_event({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm_24k).decode()})
        session.finish()
        for event in drain(session):
            adapter.on_session_event(event)
    finally:
        decoder.stop()
    assert calls and set(calls) == {"zh"}
    kinds = [e["type"] for e in sent]
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.speech_stopped")
    assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("input_audio_buffer.committed")
    completed = [e for e in sent if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert [e["transcript"] for e in completed] == ["对"]


@pytest.mark.parametrize(
    ("text", "loops"),
    [
        (ENGLISH[0], False),  # "the size of the drops" twice: speech, not a loop
        ("and then we went and then we went and then we went", True),
        ("thank you very much. Thank you very much.", True),
        ("the cat the dog the cat the bird the cat the fish", True),  # one run three times
        ("我们的生活我们的生活我们的生活", True),
        (CHINESE[0], False),
    ],
)
def test_a_phrase_said_again_later_is_not_a_loop(text: str, loops: bool) -> None:
    assert repeats(text) is loops
