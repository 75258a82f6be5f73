"""Voice agent: speech end -> first reply audio over the stock SDK, the console page beside it.

    .venv/bin/python benchmarks/agent_bench.py [--rounds 3] [--no-console] [--json]

Recordings: real read speech (LibriVox, 3-7 s) and our TTS's long English sentence (about 10 s); in
Chinese our TTS at about 2, 5 and 10 s. Each is played in real time (100 ms appends) into a fresh
``client.realtime.connect`` session with server VAD, then silence. Measured:
- speech end (the last speech sample sent) -> the first ``response.output_audio.delta``, per language
  and per length: one session, then 4 sessions at once;
- barge-in: speech during a reply -> ``response.done`` cancelled, from the ``speech_started`` event;
  no audio of that reply after it;
- the round trip: each reply's audio transcribed by our ASR against the reply's transcript (WER/CER);
- the console page (headless Chromium, fake microphone, hands-free) on the same recordings: its
  latency line (the final's end -> first audio playing).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import core  # noqa: E402
from benchmarks.shared import finish, percentile  # noqa: E402
from harness.browser import console_suite, mic_file  # noqa: E402
from harness.realtime import RATE, Turn, connect, pcm24, reply, say  # noqa: E402
from harness.speech import (  # noqa: E402
    LONG_CHINESE,
    LONG_ENGLISH,
    character_error_rate,
    librivox_clips,
    parse_wav,
    read_wav,
    trimmed,
    word_error_rate,
)

INSTRUCTIONS = (
    "You are a helpful voice assistant. Answer briefly, in one to three short sentences, "
    "in the language of the question."
)
LONG_ANSWERS = "You are a helpful voice assistant. Answer in detail, in at least five sentences."
"""For barge-in: a reply still being made when the person speaks again (a finished reply has nothing to cancel)."""
CHINESE = ["你好，你是谁？", "请介绍一下长城的历史，它有多长？", LONG_CHINESE[0]]
MIC_RATE = 48000


def recordings(tts: core.TTSClient) -> list[tuple[str, str, bytes]]:
    """(language, label, pcm16 at 24 kHz) for every question."""
    found: list[tuple[str, str, bytes]] = []
    for path, _ in sorted(librivox_clips(), key=lambda clip: len(read_wav(clip[0])))[1::2]:
        found.append(("en", "", pcm24(trimmed(read_wav(path)), 16000)))
    for language, text in [("en", LONG_ENGLISH[0]), *(("zh", text) for text in CHINESE)]:
        samples, rate = parse_wav(tts.synthesize(text))
        found.append((language, "", pcm24(trimmed(samples), rate)))
    return [(language, f"{len(pcm) / 2 / RATE:.1f} s", pcm) for language, _, pcm in found]


async def ask(url: str, pcm: bytes, language: str, delay: float = 0.0) -> tuple[float, Turn]:
    """One question in a fresh session: (speech end -> first audio, the reply)."""
    await asyncio.sleep(delay)
    async with connect(url) as connection:
        await connection.session.update(
            session={
                "type": "realtime",
                "instructions": INSTRUCTIONS,
                "audio": {"input": {"transcription": {"language": language}}},
                "temperature": 0,
            }
        )
        listening = asyncio.create_task(reply(connection))
        speech_end = await say(connection, pcm, silence_s=1.0)
        turn = await listening
    if turn.first_audio_at is None:
        raise RuntimeError(f"no audio in the reply (status {turn.status}, heard {turn.heard!r})")
    marks = {kind: at - speech_end for at, kind in reversed(turn.events)}
    print(
        f"    speech stopped {marks.get('input_audio_buffer.speech_stopped', float('nan')):.2f} s, transcript "
        f"{marks.get('conversation.item.input_audio_transcription.completed', float('nan')):.2f} s, first words "
        f"{marks.get('response.output_audio_transcript.delta', float('nan')):.2f} s"
    )
    return turn.first_audio_at - speech_end, turn


async def barge_in(url: str, question: bytes, interruption: bytes) -> tuple[float, list[str]]:
    """Ask, interrupt 0.3 s into the reply's audio: (speech_started -> response.done, events after it)."""
    async with connect(url) as connection:
        await connection.session.update(session={"type": "realtime", "instructions": LONG_ANSWERS})
        turn = Turn()
        listening = asyncio.create_task(reply(connection, turn))
        await say(connection, question, silence_s=0.0)
        while turn.first_audio_at is None and not listening.done():
            await say(connection, bytes(RATE // 5), silence_s=0.0)  # silence until the reply speaks
        await asyncio.sleep(0.3)
        started = len(turn.speech_started_at)
        await say(connection, interruption, silence_s=0.5)
        await listening
        if turn.status != "cancelled" or len(turn.speech_started_at) <= started:
            raise RuntimeError(f"the reply was not cut off (status {turn.status})")
        return turn.done_at - turn.speech_started_at[started], turn.after_done


def round_trip_error(asr: core.ASRClient, turn: Turn, language: str) -> float:
    """WER (CER in Chinese) of our ASR on the reply's audio against the reply's transcript."""
    heard = asr.transcribe(core.wav_file(bytes(turn.audio), RATE), language=language)
    measure = character_error_rate if language == "zh" else word_error_rate
    return measure(turn.transcript, heard)


def console_latencies(url: str, folder: Path, questions: list[tuple[str, str, bytes]]) -> list[float]:
    """The console page's speech end -> first audio on each recording (one browser per question)."""
    import numpy as np
    from playwright.sync_api import sync_playwright

    from benchmarks.voice_bench import console_round

    figures = []
    with sync_playwright() as playwright:
        for index, (_, label, pcm) in enumerate(questions):
            samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
            wav = mic_file(folder / f"page{index}.wav", samples, RATE)
            figures.append(console_round(playwright, url, wav)["audio"])
            print(f"  console {label}: first audio {figures[-1]:.2f} s")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="times each recording is asked in one session")
    parser.add_argument("--no-console", action="store_true", help="skip the browser console's figures")
    parser.add_argument("--logs", type=Path, help="copy the services' logs here at the end")
    parser.add_argument("--json", action="store_true", help="print one JSON object (for run_all.py) after the log")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as folder, console_suite(Path(folder)) as suite:
        url = suite["console"].url
        with core.TTSClient(suite["tts"].url) as tts:
            questions = recordings(tts)
        asyncio.run(ask(url, questions[0][2], "en"))  # warm-up
        single: dict[tuple[str, str], list[float]] = {}
        errors: dict[str, list[float]] = {"en": [], "zh": []}
        with core.ASRClient(suite["asr"].url) as asr:
            for _ in range(args.rounds):
                for language, label, pcm in questions:
                    seconds, turn = asyncio.run(ask(url, pcm, language))
                    single.setdefault((language, label), []).append(seconds)
                    errors[language].append(round_trip_error(asr, turn, language))
                    print(
                        f"  {language} {label}: first audio {seconds:.2f} s | heard {turn.heard!r}"
                        f" -> {turn.transcript!r}"
                    )
        concurrent: list[float] = []
        for _ in range(args.rounds):
            picks = [questions[i % len(questions)] for i in range(4)]

            async def four(picks=picks) -> list[tuple[float, Turn]]:
                return await asyncio.gather(*(ask(url, pcm, lang, i * 0.4) for i, (lang, _, pcm) in enumerate(picks)))

            concurrent += [seconds for seconds, _ in asyncio.run(four())]
            print(f"  4 at once: {', '.join(f'{s:.2f}' for s in concurrent[-4:])} s")
        barge: list[float] = []
        leaked: list[str] = []
        for index in range(args.rounds * 2):
            question, interruption = questions[index % 2][2], questions[-1][2]
            seconds, after = asyncio.run(barge_in(url, question, interruption))
            barge.append(seconds)
            leaked += after
            print(f"  barge-in: response.done {seconds * 1000:.0f} ms after speech_started")
        page = [] if args.no_console else console_latencies(url, Path(folder), questions)
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            for service in suite.values():
                shutil.copy(service.log_path, args.logs)
    return report(single, concurrent, barge, leaked, errors, page, args)


def report(
    single: dict[tuple[str, str], list[float]],
    concurrent: list[float],
    barge: list[float],
    leaked: list[str],
    errors: dict[str, list[float]],
    page: list[float],
    args: argparse.Namespace,
) -> int:
    """Print the figures and goals."""
    ratios: dict[str, float] = {}
    for language in ("en", "zh"):
        values = [s for (lang, _), times in single.items() if lang == language for s in times]
        ratios[f"{language}: speech end -> first audio, p50 s (goal <= 1.2)"] = round(statistics.median(values), 3)
        ratios[f"{language}: speech end -> first audio, p95 s (goal <= 1.8)"] = round(percentile(values, 95, True), 3)
        for (lang, label), times in single.items():
            if lang == language:
                ratios[f"{language} {label} question: first audio p50 s (goal <= 1.2)"] = round(
                    statistics.median(times), 3
                )
        ratios[f"{language}: reply audio re-transcribed, error rate (goal <= 0.1)"] = round(
            statistics.mean(errors[language]), 3
        )
    ratios["4 sessions at once: first audio p50 s (goal <= 2.0)"] = round(statistics.median(concurrent), 3)
    ratios["barge-in: speech_started -> response.done, p95 s (goal <= 0.3)"] = round(percentile(barge, 95, True), 3)
    ratios["barge-in: reply events after response.done (goal <= 0)"] = len(leaked)
    everything = [s for times in single.values() for s in times]
    if page:
        ratios["agent / console page, first audio p50 (goal <= 1)"] = round(
            statistics.median(everything) / statistics.median(page), 3
        )
    result = {
        "benchmark": "agent",
        "compared_with": "the console page (headless Chromium, hands-free) on the same recordings",
        "cores": os.cpu_count(),
        "rounds": args.rounds,
        "console_first_audio_s": [round(s, 3) for s in page],
        "ratios": ratios,
    }
    return finish(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
