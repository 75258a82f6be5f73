"""ASR batching: concurrent file requests and live sessions, the batched service against itself one at a time.

    .venv/bin/python benchmarks/asr_batching.py [--rounds 2] [--load-seconds 30] [--json]

Two copies of the ASR service run under gunicorn: (a) as shipped (``options.batch_size: 8``) and (b) unbatched
(``ASR__OPTIONS__BATCH_SIZE=1``: one request at a time, as before batching). Phases, one after another:

1. a lone request: each LibriVox clip sent to (a) and (b) in turn, ``--rounds`` times; the batched service's
   total time over the unbatched one's (goal <= 1.05: batching must not slow a lone request);
2. 8 requests (the clips, cycled) one at a time, then 4 and 8 at once, on (a), ``--rounds`` times in turn:
   mean aggregate audio seconds per wall second of the concurrent runs over the one-at-a-time runs (goal for
   8 >= 1.5);
3. 1, 4 and 8 live sessions of real speech paced at real time (``/asr/live``, the LibriVox clips with pauses,
   repeated to ``--load-seconds``), on (a), and 8 on (b): speech end -> final p95 (goal for 8 on (a) <= 1.0 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from benchmarks.live_bench import load_run, report_load, run_ours  # noqa: E402
from benchmarks.live_streams import english_stream  # noqa: E402
from benchmarks.shared import finish  # noqa: E402
from harness.launch import launch  # noqa: E402
from harness.speech import librivox_clips  # noqa: E402


def clips() -> list[tuple[str, bytes, float]]:
    """(name, wav bytes, seconds) of the LibriVox clips."""
    return [(p.name, p.read_bytes(), (p.stat().st_size - 44) / 32000) for p, _ in librivox_clips()]


def post(url: str, name: str, data: bytes) -> float:
    """Seconds one ``POST /asr`` took."""
    started = time.perf_counter()
    response = httpx.post(f"{url}/asr", files={"file": (name, data)}, timeout=600)
    response.raise_for_status()
    return time.perf_counter() - started


def at_once(url: str, files: list[tuple[str, bytes, float]], count: int) -> float:
    """Audio seconds per wall second for ``count`` requests (the files, cycled) sent at once."""
    chosen = [files[i % len(files)] for i in range(count)]
    barrier = threading.Barrier(count + 1)
    errors: list[Exception] = []

    def one(name: str, data: bytes) -> None:
        barrier.wait()
        try:
            post(url, name, data)
        except Exception as exc:  # reported below, after every request is done
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(name, data)) for name, data, _ in chosen]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} of {count} requests failed: {errors[0]}")
    return sum(seconds for *_, seconds in chosen) / (time.perf_counter() - started)


def one_at_a_time(url: str, files: list[tuple[str, bytes, float]], count: int) -> float:
    """Audio seconds per wall second for ``count`` requests sent one after another."""
    chosen = [files[i % len(files)] for i in range(count)]
    wall = sum(post(url, name, data) for name, data, _ in chosen)
    return sum(seconds for *_, seconds in chosen) / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--load-seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = clips()
    result: dict = {"benchmark": "asr_batching", "model": "whisper-base int8", "cores": os.cpu_count()}
    result["compared_with"] = (
        "the same service unbatched (options.batch_size 1: one decode at a time on both threads), same files, one run"
    )
    stream = english_stream()
    with (
        tempfile.TemporaryDirectory() as one_dir,
        tempfile.TemporaryDirectory() as other_dir,
        launch("asr", Path(one_dir)) as batched,
        launch("asr", Path(other_dir), env={"ASR__OPTIONS__BATCH_SIZE": "1"}) as unbatched,
    ):
        for url in (batched.url, unbatched.url):  # warm-up
            post(url, *files[0][:2])
        lone = {"batched": 0.0, "unbatched": 0.0}
        for _ in range(args.rounds):
            for name, data, _ in files:
                lone["batched"] += post(batched.url, name, data)
                lone["unbatched"] += post(unbatched.url, name, data)
        result["lone_s"] = {k: round(v, 2) for k, v in lone.items()}
        print(f"lone requests: batched {lone['batched']:.2f} s, unbatched {lone['unbatched']:.2f} s", file=sys.stderr)
        runs: dict[str, list[float]] = {"1": [], "4": [], "8": []}
        for _ in range(args.rounds):  # taken in turn, so that drift hits each alike
            runs["1"].append(one_at_a_time(batched.url, files, 8))
            for count in (4, 8):
                runs[str(count)].append(at_once(batched.url, files, count))
        rate = {count: statistics.mean(rates) for count, rates in runs.items()}
        result["files_x_realtime"] = {k: round(v, 2) for k, v in rate.items()}
        print(f"x real time, 1 / 4 / 8 requests at once: {result['files_x_realtime']}", file=sys.stderr)
        live: dict[str, float] = {}
        for name, service, sessions in (("batched", batched, 1), ("batched", batched, 4), ("batched", batched, 8)):
            url = service.url.replace("http://", "ws://") + "/asr/live"
            runs = load_run(lambda s, url=url: run_ours(url, s), stream, sessions, args.load_seconds)
            live[f"{name}_{sessions}"] = report_load(f"{name}, {sessions}", runs)
        url = unbatched.url.replace("http://", "ws://") + "/asr/live"
        live["unbatched_8"] = report_load(
            "unbatched, 8", load_run(lambda s: run_ours(url, s), stream, 8, args.load_seconds)
        )
        result["live_final_p95_s"] = {k: round(v, 3) for k, v in live.items()}
    result["ratios"] = {
        "lone request, batched / unbatched time (goal <= 1.05)": round(lone["batched"] / lone["unbatched"], 3),
        "4 requests at once / one at a time, aggregate": round(rate["4"] / rate["1"], 3),
        "8 requests at once / one at a time, aggregate (goal >= 1.5)": round(rate["8"] / rate["1"], 3),
        "1 live session: speech end -> final p95, s": round(live["batched_1"], 3),
        "4 live sessions: speech end -> final p95, s": round(live["batched_4"], 3),
        "8 live sessions: speech end -> final p95, s (goal <= 1.0)": round(live["batched_8"], 3),
        "8 live sessions unbatched: speech end -> final p95, s": round(live["unbatched_8"], 3),
    }
    return finish(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
