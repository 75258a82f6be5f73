"""Long single-breath sentences over /asr/live in real time: is any final lost?

    .venv/bin/python benchmarks/live_long_sentences.py [--runs 50] [--concurrent 2] [--json]

Starts the ASR service under gunicorn on the offline default and streams, in real time in 100 ms frames,
long sentences said in one breath (9-14 s): LibriVox read speech joined two clips at a time, and our
TTS's English and Chinese sentences, one of them with a phrase said twice. Each run sends the sentence,
3 s of silence and ``end``. A run *loses* its sentence when ``done`` has no text or its error rate is over
50 % (a whole final missing); the script exits non-zero if any run does. Word/character error rates are
printed per language for reference.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from scipy.signal import resample_poly
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from benchmarks.shared import send_paced
from harness.launch import launch
from harness.speech import (
    LONG_CHINESE,
    LONG_ENGLISH,
    character_error_rate,
    librivox_clips,
    pcm16,
    read_wav,
    trimmed,
    word_error_rate,
)

RATE = 16000
FRAME = 3200


def sentences() -> dict[str, list[tuple[np.ndarray, str]]]:
    """Long single-breath sentences per language: (16 kHz samples, reference)."""
    from tts_service.engine import TtsEngine
    from tts_service.settings import TtsSettings

    tts = TtsEngine(TtsSettings.load())
    tts.start(background=False)

    def spoken(text: str, style: str) -> np.ndarray:
        speech = tts.synthesize(text, style=style)
        return trimmed(resample_poly(speech.samples, RATE, speech.sample_rate).astype(np.float32))

    clips = [(trimmed(read_wav(path)), text) for path, text in librivox_clips()]
    english = [(np.concatenate([a[0], b[0]]), f"{a[1]} {b[1]}") for a, b in zip(clips[::2], clips[1::2], strict=False)]
    english += [(spoken(text, "style1"), text) for text in LONG_ENGLISH]
    chinese = [(spoken(text, "style2"), text) for text in LONG_CHINESE]
    tts.close()
    return {"en": english, "zh": chinese}


def stream(url: str, audio: np.ndarray) -> dict:
    """One real-time run: 0.5 s of silence, the sentence, 3 s of silence, end; returns ``done`` (or the error)."""
    quiet = np.zeros(RATE // 2, np.float32)
    data = pcm16(np.concatenate([quiet, audio, quiet * 6]))
    events: list[dict] = []
    with connect(url, open_timeout=30) as ws:
        json.loads(ws.recv(timeout=30))
        send_paced(ws.send, data, time.monotonic(), FRAME)
        ws.send(json.dumps({"event": "end"}))
        with contextlib.suppress(ConnectionClosed):
            for message in ws:
                events.append(json.loads(message))
    return events[-1] if events else {"error": "no events"}


def one_run(url: str, items: list[tuple[np.ndarray, str]], index: int, language: str) -> tuple[float, str]:
    """(error rate, a line saying what was lost or "") of run ``index``."""
    audio, reference = items[index % len(items)]
    done = stream(url, audio)
    rate = character_error_rate if language == "zh" else word_error_rate
    error = rate(reference, done["text"]) if "text" in done else 1.0
    lost = not done.get("text") or error > 0.5
    return error, f"run {index}: {json.dumps(done, ensure_ascii=False)[:200]}" if lost else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per language")
    parser.add_argument("--concurrent", type=int, default=2, help="sessions at once")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    material = sentences()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as run_dir, launch("asr", Path(run_dir)) as service:
        for language, items in material.items():
            url = service.url.replace("http://", "ws://") + f"/asr/live?language={language}"
            with ThreadPoolExecutor(args.concurrent) as pool:
                runs = list(pool.map(functools.partial(one_run, url, items, language=language), range(args.runs)))
            errors = [error for error, _ in runs]
            lost = [line for _, line in runs if line]
            results[language] = {
                "runs": args.runs,
                "lost": len(lost),
                "lost_runs": lost,
                "error_rate_median": statistics.median(errors),
                "error_rate_max": max(errors),
            }
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        for language, result in results.items():
            print(
                f"{language}: {result['lost']} of {result['runs']} runs lost their sentence; error rate median "
                f"{result['error_rate_median']:.3f}, max {result['error_rate_max']:.3f} (goal: 0 lost)"
            )
            for line in result["lost_runs"]:
                print(f"  {line}")
    return 1 if any(result["lost"] for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
