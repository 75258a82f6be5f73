"""ASR speed and accuracy, measured side by side in one run on the same files and settings.

    .venv/bin/python benchmarks/asr_bench.py [--rounds 2]

(a) in-process: stock faster-whisper (Whisper base, int8, the service's beam/VAD settings and threads per decode);
(b) the service under gunicorn: POST /asr with the same files;
ratio b/a of real-time factors (goal >= 0.9). Then, for a ~64 s file, the time to the first
/asr/stream partial divided by the whole stream's time (goal <= 0.35). WER on LibriVox for both.
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
import numpy as np  # noqa: E402

from asr_service.backends.whisper import WhisperOptions, prepare_bundled_base  # noqa: E402
from asr_service.settings import AsrSettings  # noqa: E402
from benchmarks.shared import finish  # noqa: E402
from harness.launch import launch  # noqa: E402
from harness.speech import librivox_clips, long_speech, wav_bytes, word_error_rate  # noqa: E402


def workload() -> list[tuple[str, bytes, float, str]]:
    """(name, wav bytes, seconds, reference): the five clips and a ~64 s file of all of them twice."""
    files = []
    for path, reference in librivox_clips():
        data = path.read_bytes()
        files.append((path.name, data, (len(data) - 44) / 32000, reference))
    samples, reference = long_speech()
    doubled = np.concatenate([samples, samples])
    files.append(("long-64s.wav", wav_bytes(doubled), len(doubled) / 16000, f"{reference} {reference}"))
    return files


def in_process(files: list[tuple[str, bytes, float, str]], rounds: int) -> tuple[float, float]:
    from faster_whisper import WhisperModel

    settings = AsrSettings.load()
    options = WhisperOptions.model_validate(settings.options)
    # the service's threads per decode: a lone request gets as many (one replica's), so the ratio is the service's
    threads = options.threads_per_decode(settings.cpu_threads)
    model = WhisperModel(
        str(prepare_bundled_base()), device="cpu", compute_type=options.compute_type, cpu_threads=threads
    )
    audio_seconds = wall = 0.0
    references, hypotheses = [], []
    with tempfile.TemporaryDirectory() as scratch:
        warm_up = Path(scratch) / "warm-up.wav"
        warm_up.write_bytes(files[0][1])
        "".join(s.text for s in model.transcribe(str(warm_up), vad_filter=options.vad)[0])
        for _ in range(rounds):
            for name, data, seconds, reference in files:
                path = Path(scratch) / name
                path.write_bytes(data)
                started = time.perf_counter()
                segments, _ = model.transcribe(
                    str(path),
                    beam_size=options.beam_size,
                    vad_filter=options.vad,
                    condition_on_previous_text=options.condition_on_previous_text,
                )
                text = "".join(s.text for s in segments)
                wall += time.perf_counter() - started
                audio_seconds += seconds
                references.append(reference)
                hypotheses.append(text)
    return audio_seconds / wall, word_error_rate(" ".join(references), " ".join(hypotheses))


def service(url: str, files: list[tuple[str, bytes, float, str]], rounds: int) -> tuple[float, float]:
    audio_seconds = wall = 0.0
    references, hypotheses = [], []
    with httpx.Client(base_url=url, timeout=600) as client:
        for _ in range(rounds):
            for name, data, seconds, reference in files:
                started = time.perf_counter()
                response = client.post("/asr", files={"file": (name, data)})
                wall += time.perf_counter() - started
                response.raise_for_status()
                audio_seconds += seconds
                references.append(reference)
                hypotheses.append(response.json()["text"])
    return audio_seconds / wall, word_error_rate(" ".join(references), " ".join(hypotheses))


def first_partial(url: str, data: bytes) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    with httpx.stream("POST", f"{url}/asr/stream", files={"file": ("long.wav", data)}, timeout=600) as response:
        for line in response.iter_lines():
            if line and first is None:
                first = time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = workload()
    a_rtf, a_wer = in_process(files, args.rounds)
    with tempfile.TemporaryDirectory() as run_dir, launch("asr", Path(run_dir)) as running:
        service(running.url, files[:1], 1)  # warm-up
        b_rtf, b_wer = service(running.url, files, args.rounds)
        first, total = first_partial(running.url, files[-1][1])
    result = {
        "benchmark": "asr",
        "compared_with": (
            "stock faster-whisper in-process (same model, beam and threads per decode; its own VAD, 30 s windows)"
        ),
        "model": "whisper-base int8",
        "cores": os.cpu_count(),
        "in_process_x_realtime": round(a_rtf, 2),
        "service_x_realtime": round(b_rtf, 2),
        "in_process_wer": round(a_wer, 4),
        "service_wer": round(b_wer, 4),
        "stream_first_partial_s": round(first, 2),
        "stream_total_s": round(total, 2),
        "ratios": {
            "service / in-process speed (goal >= 0.9)": round(b_rtf / a_rtf, 3),
            "first partial / total, 64 s file (goal <= 0.35)": round(first / total, 3),
        },
    }
    if not args.json:
        audio = sum(f[2] for f in files)
        print(f"Whisper base int8, {os.cpu_count()} cores, {len(files)} files ({audio:.0f} s of audio) x {args.rounds}")
        print(f"(a) in-process faster-whisper  {a_rtf:5.2f}x real time   WER {a_wer:.1%}")
        print(f"(b) service /asr               {b_rtf:5.2f}x real time   WER {b_wer:.1%}")
        print(f"b/a = {b_rtf / a_rtf:.2f} (goal >= 0.9)")
        print(
            f"/asr/stream on the 64 s file: first partial {first:.2f} s of {total:.2f} s = {first / total:.2f} "
            "(goal <= 0.35)"
        )
    return finish(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
