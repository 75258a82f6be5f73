"""core.py's voice agent client (``core_agent``): a spoken conversation over the console's ``/v1/realtime``.

The slow tests talk to the real suite (``voice_suite``: real offline models under gunicorn); the
questions are spoken by our own TTS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from io import BytesIO
from pathlib import Path

import pytest

import core
from core_agent import RATE, pcm24k, wav24k
from harness.launch import REPO, RunningService
from harness.speech import parse_wav, word_error_rate

CAPITAL = "What is the capital of France?"
FAMOUS = "And what is it famous for?"
INSTRUCTIONS = "You are a voice assistant. Answer in one short sentence."


def test_a_wav_at_another_rate_is_resampled_to_24_khz() -> None:
    pcm16k = bytes(range(256)) * 125  # 16,000 samples: one second at 16 kHz
    converted = pcm24k(core.wav_file(pcm16k, 16000))
    assert len(converted) == 2 * RATE
    assert pcm24k(wav24k(converted)) == converted
    with pytest.raises(ValueError, match="not a WAV"):
        pcm24k(b"not a wav at all")


def test_an_unreachable_console_raises_service_unavailable() -> None:
    with core.Core(console_url="http://127.0.0.1:9") as suite, pytest.raises(core.ServiceUnavailableError):
        suite.agent()


@pytest.fixture(scope="module")
def questions(voice_suite: dict[str, RunningService]) -> dict[str, bytes]:
    with core.Core(tts_url=voice_suite["tts"].url) as client:
        return {text: client.tts.synthesize(text) for text in (CAPITAL, FAMOUS)}


@pytest.mark.slow
def test_a_spoken_conversation_of_two_turns(
    voice_suite: dict[str, RunningService], questions: dict[str, bytes]
) -> None:
    urls = {name: service.url for name, service in voice_suite.items()}
    with core.Core(console_url=urls["console"], asr_url=urls["asr"]) as suite:
        with suite.agent(instructions=INSTRUCTIONS, language="en", temperature=0) as talk:
            first = talk.say(questions[CAPITAL])
            second = talk.say(questions[FAMOUS], speed=0)  # as fast as it goes
        # one word of the six may be misheard ("the capital of friends"); the ASR's accuracy is benchmarked
        assert word_error_rate(CAPITAL, first.heard) <= 0.2, first.heard
        assert word_error_rate(FAMOUS, second.heard) <= 0.2, second.heard
        assert "paris" in first.reply.lower(), first.reply
        assert any(word in second.reply.lower() for word in ("paris", "eiffel", "louvre", "france")), second.reply
        for reply, other in ((first, second), (second, first)):
            assert reply.status == "completed"
            assert reply.first_audio_s is not None and 0 < reply.first_audio_s < reply.done_s
            samples, rate = parse_wav(reply.audio)
            assert rate == RATE and len(samples) > RATE // 2
            # Whisper base hears our TTS's names unevenly ("the capital of Francis Paris"): up to WER 0.5 on
            # 180 English clips. Audio that lost half the reply, or spoke the other turn's, fails one of these.
            round_trip = suite.asr.transcribe(reply.audio, language="en")
            assert word_error_rate(reply.reply, round_trip) <= 0.5, round_trip
            assert word_error_rate(reply.reply, round_trip) < word_error_rate(other.reply, round_trip), round_trip
            assert reply.events.index("response.created") < reply.events.index("response.done")


@pytest.mark.slow
def test_a_typed_turn_and_a_refused_voice(voice_suite: dict[str, RunningService]) -> None:
    with core.Core(console_url=voice_suite["console"].url) as suite:
        with suite.agent(instructions=INSTRUCTIONS, temperature=0) as talk:
            reply = talk.ask(CAPITAL)
        assert reply.heard == CAPITAL and "paris" in reply.reply.lower() and reply.audio
        with pytest.raises(core.InvalidRequestError, match="voice"):
            suite.agent(voice="no-such-voice")


@pytest.mark.slow
def test_the_agent_command_prints_what_was_heard_and_writes_the_reply(
    voice_suite: dict[str, RunningService], questions: dict[str, bytes], tmp_path: Path
) -> None:
    question = tmp_path / "question.wav"
    question.write_bytes(questions[CAPITAL])
    env = {**os.environ, "CONSOLE_URL": voice_suite["console"].url}
    out = tmp_path / "reply.wav"
    command = [sys.executable, str(REPO / "core.py"), "agent", str(question), "--out", str(out), "--language", "en"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    heard = next(line for line in done.stdout.splitlines() if line.startswith("heard: "))
    assert word_error_rate(CAPITAL, heard.removeprefix("heard: ")) <= 0.15, done.stdout
    assert "reply: " in done.stdout and "first audio after" in done.stdout
    with wave.open(BytesIO(out.read_bytes())) as wav:
        assert wav.getframerate() == RATE and wav.getnframes() > RATE // 2
