"""Long single-breath sentences on the real Whisper model keep their final; a forced language reaches every decode.

The English sentence says "the size of the drops" twice: the short-window decode took that for a loop,
partials gave up on it, and a partial taken over as the final left the whole sentence without text.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import numpy as np
import openai
import pytest
from scipy.signal import resample_poly

from asr_service.engine import AsrEngine
from asr_service.live_decoder import LiveDecoder
from harness.launch import RunningService
from harness.speech import LONG_CHINESE as CHINESE
from harness.speech import LONG_ENGLISH as ENGLISH
from harness.speech import character_error_rate, word_error_rate
from tests.shared import drain, pcm

RATE = 16000
FRAME = 3200  # 100 ms of 16 kHz PCM


def speech(tts_engine: Any, text: str, style: str) -> np.ndarray:
    spoken = tts_engine.synthesize(text, style=style)
    return resample_poly(spoken.samples, RATE, spoken.sample_rate).astype(np.float32)


def paced_events(
    engine: AsrEngine, audio: np.ndarray, language: str, speed: float, partial_interval_s: float | None = None
) -> list[dict[str, Any]]:
    """Feed ``audio`` then 3 s of silence in 100 ms frames at ``speed`` x real time, then end.

    With ``partial_interval_s``, the session asks for partials that often (on a decoder of its own): a partial
    then always covers the end of speech and is still being decoded when the pause ends the utterance.
    """
    decoder = engine.live
    if partial_interval_s is not None:
        limits = engine.settings.live.model_copy(update={"partial_interval_s": partial_interval_s})
        decoder = LiveDecoder(engine._decode_live, limits, engine._live_lease)
    session = decoder.open(language=language)
    data = pcm(np.concatenate([np.zeros(RATE // 2, np.float32), audio, np.zeros(3 * RATE, np.float32)]))
    try:
        for start in range(0, len(data), FRAME):
            session.feed(data[start : start + FRAME])
            time.sleep(0.1 / speed)
        session.finish()
        return drain(session, timeout=120)
    finally:
        session.close()
        if decoder is not engine.live:
            decoder.stop()


@pytest.mark.slow
@pytest.mark.parametrize(("speed", "partial_interval_s"), [(1.0, None), (2.0, None), (2.0, 0.1)])
def test_a_long_english_sentence_with_a_repeated_phrase_keeps_its_final(
    asr_engine: AsrEngine, tts_engine: Any, speed: float, partial_interval_s: float | None
) -> None:
    audio = speech(tts_engine, ENGLISH[0], "style1")
    events = paced_events(asr_engine, audio, "en", speed, partial_interval_s)
    finals = [e for e in events if e.get("final")]
    assert finals, events
    assert events[-1]["text"] == " ".join(f["text"] for f in finals)
    assert word_error_rate(ENGLISH[0], events[-1]["text"]) <= 0.15, events[-1]


@pytest.mark.slow
def test_a_long_chinese_sentence_keeps_its_final(asr_engine: AsrEngine, tts_engine: Any) -> None:
    text = "".join(CHINESE)
    events = paced_events(asr_engine, speech(tts_engine, text, "style2"), "zh", 2.0)
    assert [e for e in events if e.get("final")], events
    assert character_error_rate(text, events[-1]["text"]) <= 0.2, events[-1]


@pytest.mark.slow
def test_realtime_language_reaches_a_short_first_utterance(asr_server: RunningService, tts_engine: Any) -> None:
    """ "好的。" (0.7 s) and a pause, then a sentence, with language zh set by session.update: Chinese, not kana.

    (A lone "对" is shorter than ``min_speech_s`` of speech and is dropped as noise.)"""
    pause = np.zeros(int(1.2 * RATE), np.float32)
    audio = np.concatenate(
        [pause, speech(tts_engine, "好的。", "style2"), pause, speech(tts_engine, CHINESE[1], "style2")]
    )
    data = pcm(resample_poly(np.concatenate([audio, pause]), 3, 2).astype(np.float32))
    client = openai.OpenAI(base_url=f"{asr_server.url}/v1", api_key="unused")
    kinds: list[str] = []
    transcripts: list[str] = []
    with client.realtime.connect(model="whisper-1") as connection:
        assert connection.recv().type == "session.created"
        connection.session.update(
            session={"type": "transcription", "audio": {"input": {"transcription": {"language": "zh"}}}}
        )
        for start in range(0, len(data), 9600):
            connection.input_audio_buffer.append(audio=base64.b64encode(data[start : start + 9600]).decode())
        for event in connection:
            kinds.append(event.type)
            if event.type == "conversation.item.input_audio_transcription.completed":
                transcripts.append(event.transcript)
                if len(transcripts) == 2:
                    break
    assert not any("\u3040" <= c <= "\u30ff" for t in transcripts for c in t), transcripts  # no kana
    assert character_error_rate(CHINESE[1], transcripts[1]) <= 0.25, transcripts
    assert kinds.count("input_audio_buffer.speech_started") == kinds.count("input_audio_buffer.speech_stopped") == 2
    assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("input_audio_buffer.committed")
