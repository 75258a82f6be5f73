"""Draining live sessions (the service is going away): the open utterance still gets its final, then
``going_away`` says from where the client must resend its audio; no new session is taken."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from asr_service.live_decoder import LiveDecoder
from asr_service.live_limits import LiveLimits
from common.errors import ServiceUnavailable
from common.model_slot import ModelSlot
from harness.speech import librivox_clips, read_wav
from tests.shared import drain, pcm
from tests.test_asr_live import RecordingDecoder

RATE = 16000


@pytest.fixture
def decoder() -> Iterator[LiveDecoder]:
    slot = ModelSlot("fake", max_waiting=4, wait_timeout=10)
    live = LiveDecoder(RecordingDecoder(), LiveLimits(max_sessions=2, drain_s=0.5), lambda: slot.acquire(priority=True))
    yield live
    live.stop()


def test_a_quiet_session_goes_away_at_once_and_no_new_one_opens(decoder: LiveDecoder) -> None:
    session = decoder.open()
    session.feed(pcm(np.zeros(2 * RATE, np.float32)))
    decoder.drain()
    events = drain(session, timeout=5)
    assert [e.get("event") for e in events] == ["going_away"]
    assert events[0]["resume_from"] == pytest.approx(2.0 - LiveLimits().pad_before_s, abs=0.05)
    assert session.going_away
    with pytest.raises(ServiceUnavailable):
        decoder.open()


def test_the_utterance_being_spoken_ends_with_its_final_before_going_away(decoder: LiveDecoder) -> None:
    clip = read_wav(librivox_clips()[1][0])
    session = decoder.open()
    session.feed(pcm(np.concatenate([np.zeros(RATE // 2, np.float32), clip[: len(clip) // 2]])))
    decoder.drain()  # mid-sentence: the speaker goes on and then pauses
    session.feed(pcm(np.concatenate([clip[len(clip) // 2 :], np.zeros(RATE, np.float32)])))
    events = drain(session, timeout=10)
    finals = [e for e in events if e.get("final")]
    assert len(finals) == 1 and finals[0]["end"] == pytest.approx(0.5 + len(clip) / RATE, abs=0.4)
    assert events[-1]["event"] == "going_away" and events[-1]["resume_from"] >= finals[0]["end"]


def test_a_speaker_who_never_pauses_is_cut_after_drain_s(decoder: LiveDecoder) -> None:
    clip = read_wav(librivox_clips()[0][0])
    session = decoder.open()
    session.feed(pcm(clip[: 3 * RATE]))
    decoder.drain()
    events = drain(session, timeout=10)  # no more audio comes: the utterance stays open until drain_s
    assert [e.get("final") for e in events if e.get("final")] == [True]
    assert events[-1]["event"] == "going_away"
