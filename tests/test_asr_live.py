"""Live transcription sessions without a socket: real VAD on real speech, a fake decoder (fast)."""

from __future__ import annotations

import queue
import threading
from typing import Any

import numpy as np
import pytest

from asr_service.live_decoder import LiveDecoder
from asr_service.live_limits import LiveLimits
from asr_service.vad import WINDOW, StreamingVad
from common.errors import BadRequest, Overloaded
from common.model_slot import ModelSlot
from harness.speech import librivox_clips, read_wav
from tests.shared import drain, irregular_frames, pcm, wait_until

RATE = 16000


class RecordingDecoder:
    """Stands in for the model: answers with the decoded length, records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.ending = ""

    def __call__(
        self, samples: np.ndarray, language: str | None, may_be_final: bool, said_before: str = ""
    ) -> tuple[str, str | None]:
        self.gate.wait(10)
        self.calls.append((len(samples), language))
        return f"heard {len(samples) / RATE:.2f} s{self.ending}", language or "en"


def two_utterances() -> np.ndarray:
    silence = np.zeros(int(1.5 * RATE), dtype=np.float32)
    first, second = (read_wav(path) for path, _ in librivox_clips()[1:3])
    return np.concatenate([silence[:RATE], first, silence, second, silence])


@pytest.fixture
def decoder() -> Any:
    fake = RecordingDecoder()
    slot = ModelSlot("fake", max_waiting=4, wait_timeout=10)
    live = LiveDecoder(fake, LiveLimits(max_sessions=2), lambda: slot.acquire(priority=True))
    live.fake = fake  # type: ignore[attr-defined]
    yield live
    live.stop()


def test_two_utterances_give_partials_then_one_final_each(decoder: LiveDecoder) -> None:
    session = decoder.open()
    for frame in irregular_frames(pcm(two_utterances())):
        session.feed(frame)
    session.finish()
    events = drain(session)
    finals = [e for e in events if e.get("final")]
    assert len(finals) == 2
    first_final = events.index(finals[0])
    assert any("partial_text" in e for e in events[:first_final]), "a partial comes before the first final"
    # the utterances sit where the speech is: 1.0-4.0 s and 5.5-10.8 s
    assert finals[0]["start"] == pytest.approx(1.0, abs=0.35) and finals[0]["end"] == pytest.approx(4.0, abs=0.4)
    assert finals[1]["start"] == pytest.approx(5.5, abs=0.35) and finals[1]["end"] == pytest.approx(10.8, abs=0.4)
    assert all(e["language"] == "en" for e in finals)
    done = events[-1]
    assert done["event"] == "done" and done["text"] == " ".join(f["text"] for f in finals)
    assert done["duration"] == pytest.approx(len(two_utterances()) / RATE, abs=0.01)
    # partials of an utterance never come after its final
    for final in finals:
        later = events[events.index(final) + 1 :]
        assert not any(e.get("partial_text") and e["start"] == final["start"] for e in later)


def test_silence_only_gives_no_text_and_no_decode(decoder: LiveDecoder) -> None:
    session = decoder.open()
    noise = np.random.default_rng(1).normal(0, 0.003, 5 * RATE).astype(np.float32)
    for frame in irregular_frames(pcm(noise)):
        session.feed(frame)
    session.finish()
    assert drain(session) == [{"event": "done", "text": "", "duration": 5.0}]
    assert decoder.fake.calls == []  # type: ignore[attr-defined]


def test_pause_that_ends_the_utterance_reuses_the_speculative_decode(decoder: LiveDecoder) -> None:
    session = decoder.open()
    clip = read_wav(librivox_clips()[1][0])
    audio = np.concatenate([clip, np.zeros(RATE, dtype=np.float32)])
    for frame in irregular_frames(pcm(audio)):
        session.feed(frame)
    final = next(e for e in iter(lambda: session.events.get(timeout=10), None) if e.get("final"))
    session.finish()
    drain(session)
    final_length = round((final["end"] - final["start"]) * RATE)
    calls = decoder.fake.calls  # type: ignore[attr-defined]
    assert sum(abs(length - final_length) <= 16 for length, _ in calls) == 1, "the final range was decoded once"


@pytest.mark.parametrize(
    ("ending", "pause"),
    [(".", LiveLimits().sentence_end_silence_s), ("", LiveLimits().end_silence_s), ("...", LiveLimits().end_silence_s)],
)
def test_a_finished_sentence_ends_at_a_shorter_pause(decoder: LiveDecoder, ending: str, pause: float) -> None:
    decoder.fake.ending = ending  # type: ignore[attr-defined]
    session = decoder.open()
    clip = read_wav(librivox_clips()[1][0])
    probabilities = StreamingVad().feed(clip)
    speech_end = (np.flatnonzero(probabilities >= LiveLimits().speech_threshold)[-1] + 1) * WINDOW
    audio = pcm(np.concatenate([clip, np.zeros(RATE, dtype=np.float32)]))
    final_after = None
    for position in range(0, len(audio), WINDOW * 2):  # one VAD window at a time, each decode done before the next
        session.feed(audio[position : position + WINDOW * 2])
        wait_until(lambda: not session.has_work() and session._inflight is None, "the decode", 20, poll=0.005)
        events = [session.events.get_nowait() for _ in range(session.events.qsize())]
        if any(e.get("final") for e in events):
            final_after = (position // 2 + WINDOW - speech_end) / RATE
            break
    session.close()
    assert final_after is not None
    assert pause <= final_after < pause + 2 * WINDOW / RATE


def test_long_speech_is_cut_at_max_utterance(decoder: LiveDecoder) -> None:
    decoder.limits = LiveLimits(max_utterance_s=2.0)
    session = decoder.open()
    for frame in irregular_frames(pcm(read_wav(librivox_clips()[0][0]))):
        session.feed(frame)
    session.finish()
    finals = [e for e in drain(session) if e.get("final")]
    assert len(finals) >= 3
    assert all(f["end"] - f["start"] <= 2.0 + LiveLimits().pad_after_s + 0.01 for f in finals)


def test_odd_frames_and_audio_after_end_are_refused(decoder: LiveDecoder) -> None:
    session = decoder.open()
    with pytest.raises(BadRequest, match="whole 16-bit samples"):
        session.feed(b"\x00\x01\x02")
    session.finish()
    with pytest.raises(BadRequest, match="after the end"):
        session.feed(b"\x00\x00")


def test_session_limit_and_close_frees_a_place(decoder: LiveDecoder) -> None:
    sessions = [decoder.open(), decoder.open()]
    with pytest.raises(Overloaded):
        decoder.open()
    sessions[0].close()
    decoder.open()
    assert decoder.active() == 2


def test_other_sample_rates_are_resampled(decoder: LiveDecoder) -> None:
    session = decoder.open(sample_rate=48000)
    clip = read_wav(librivox_clips()[1][0])
    upsampled = np.interp(np.arange(len(clip) * 3) / 3, np.arange(len(clip)), clip).astype(np.float32)
    session.feed(pcm(np.concatenate([upsampled, np.zeros(48000, dtype=np.float32)])))
    session.finish()
    finals = [e for e in drain(session) if e.get("final")]
    assert len(finals) == 1 and finals[0]["end"] == pytest.approx(len(clip) / RATE, abs=0.4)


def test_a_slow_model_skips_partials_but_never_finals(decoder: LiveDecoder) -> None:
    fake = decoder.fake  # type: ignore[attr-defined]
    fake.gate.clear()  # the model is stuck while all the audio arrives
    session = decoder.open()
    for frame in irregular_frames(pcm(two_utterances())):
        session.feed(frame)
    session.finish()
    fake.gate.set()
    events = drain(session)
    assert len([e for e in events if e.get("final")]) == 2
    assert len(fake.calls) <= 4, "stale partial requests were replaced, not queued"


def test_decoder_stop_fails_open_sessions(decoder: LiveDecoder) -> None:
    session = decoder.open()
    decoder.stop()
    event = session.events.get(timeout=5)
    assert event["error"]["code"] == "shutting_down"
    with pytest.raises(queue.Empty):
        session.events.get(timeout=0.1)
