"""Voice round trip: the browser console against ``core.py voice``, on the same recordings in one run.

    .venv/bin/python benchmarks/voice_bench.py [--rounds 1] [--json]

Five spoken questions (three English, two Chinese, made by our own TTS) go (a) into the voice console
in headless Chromium, whose fake microphone plays the question once and then silence, in hands-free
mode: the live route hears it, the server's end-of-utterance detection ends the turn, the LLM streams
and TTS speaks clause by clause; and (b) into ``Core.voice_chat`` as a finished WAV file (ASR ->
LLM -> TTS per clause). Measured: (a) speech end -> first reply audio playing (the page's latency
line: the final's end, mapped to when that sample was captured, to when the first clause starts
playing); (b) the file sent -> the first clause's audio ready (``VoiceReply.first_audio_s``). Same
system prompt, ``max_tokens``, temperature 0 (so both ways get the same answer: the LLM's first sentence,
which both wait for, does not change between them) and services for both.
Goals: (a) p50 <= 1.5 s and <= 0.5x (b)'s p50.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

import core  # noqa: E402
from benchmarks.shared import finish, percentile  # noqa: E402
from common.audio import resample  # noqa: E402
from harness.browser import browser, console_suite, mic_file  # noqa: E402
from harness.speech import parse_wav  # noqa: E402

QUESTIONS = [
    "What is the capital of France, and what is it famous for?",
    "How do I make a good cup of coffee at home?",
    "Why is the sky blue during the day?",
    "今天天气怎么样？适合出去散步吗？",
    "请介绍一下长城的历史。",
]
SYSTEM = (
    "You are a helpful voice assistant. Answer briefly, in one to three short sentences, "
    "in the language of the question."
)
MAX_TOKENS = 160
MIC_RATE = 48000
WAIT_MS = 180_000


def console_round(playwright, url: str, wav: Path) -> dict[str, float]:
    """One question through the page; the latency line's figures in seconds."""
    with browser(playwright, wav) as context:
        page = context.new_page()
        page.goto(f"{url}/")
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=WAIT_MS)
        page.fill("[data-testid=system]", SYSTEM)
        page.fill("#max-tokens", str(MAX_TOKENS))
        page.fill("[data-testid=temperature]", "0")
        page.check("[data-testid=handsfree]")
        latency = "document.querySelector('[data-testid=latency]').dataset"
        page.wait_for_function(f"{latency}.audioMs !== undefined", timeout=WAIT_MS)
        figures = page.evaluate(f"({{...{latency}}})")
        heard = page.evaluate("document.querySelector('[data-testid=final]').textContent")
    print(f"    console heard {heard!r}")
    return {name: int(figures[f"{name}Ms"]) / 1000 for name in ("final", "token", "audio")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="times each question is asked each way")
    parser.add_argument("--json", action="store_true", help="print one JSON object (for run_all.py) after the log")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="voice-bench-") as folder,
        console_suite(Path(folder)) as suite,
        core.Core(**{f"{name}_url": suite[name].url for name in ("asr", "llm", "tts", "embedding")}) as client,
    ):
        files, recordings = [], []
        for index, text in enumerate(QUESTIONS):
            wav = client.tts.synthesize(text)
            samples, rate = parse_wav(wav)
            recordings.append(wav)
            files.append(mic_file(Path(folder) / f"q{index}.wav", resample(samples, rate, MIC_RATE), MIC_RATE))
        client.voice_chat(recordings[0], system=SYSTEM, max_tokens=16)  # warm-up
        page_figures: list[dict[str, float]] = []
        file_first_audio: list[float] = []
        with sync_playwright() as playwright:
            for _ in range(args.rounds):
                for text, wav, recording in zip(QUESTIONS, files, recordings, strict=True):
                    print(f"  {text}")
                    page_figures.append(console_round(playwright, suite["console"].url, wav))
                    started = time.perf_counter()
                    reply = client.voice_chat(recording, system=SYSTEM, max_tokens=MAX_TOKENS, temperature=0)
                    file_first_audio.append(reply.first_audio_s)
                    print(
                        f"    console: text {page_figures[-1]['final']:.2f} s, first token "
                        f"{page_figures[-1]['token']:.2f} s, first audio {page_figures[-1]['audio']:.2f} s | "
                        f"core.py voice: first audio {reply.first_audio_s:.2f} s "
                        f"(heard {reply.heard!r}, all {time.perf_counter() - started:.1f} s)"
                    )
    audio = [figures["audio"] for figures in page_figures]
    rows = [
        ("console: speech end -> final text", [f["final"] for f in page_figures]),
        ("console: speech end -> first token", [f["token"] for f in page_figures]),
        ("console: speech end -> first audio playing", audio),
        ("core.py voice: file sent -> first audio ready", file_first_audio),
    ]
    figures = {name: (statistics.median(values), percentile(values, 95, nearest_rank=True)) for name, values in rows}
    if not args.json:
        print(f"\n{'':<48} {'p50':>7} {'p95':>7}")
        for name, (middle, high) in figures.items():
            print(f"{name:<48} {middle:>6.2f}s {high:>6.2f}s")
    p50 = statistics.median(audio)
    result = {
        "benchmark": "voice",
        "compared_with": "core.py voice on the same recordings, same services",
        "cores": os.cpu_count(),
        "rounds": args.rounds,
        "p50_p95_s": {name: [round(middle, 3), round(high, 3)] for name, (middle, high) in figures.items()},
        "ratios": {
            "console: speech end -> first audio playing, p50 s (goal <= 1.5)": round(p50, 3),
            "console / core.py voice, first audio p50 (goal <= 0.5)": round(
                p50 / statistics.median(file_first_audio), 3
            ),
        },
    }
    return finish(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
