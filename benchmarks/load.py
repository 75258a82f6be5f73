"""Bounded load against a running service on loopback: N clients for T seconds, realistic mixed requests.

    .venv/bin/python benchmarks/load.py --service embedding --clients 32 --seconds 60 [--json]

Reports throughput, p50/p95/p99 latency, status-code counts and the service's RSS: cold, after a short
warm-up of the same load (``--warmup``, while the model runtimes' arenas reach their working size), and
after the run (from its pid file in $SUITE_RUN_DIR, default run/). Clients honour Retry-After on 429, as
real ones do. Goal: no error but deliberate 429s, RSS growth during the run < 10 %.
"""

from __future__ import annotations

import argparse
import collections
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import httpx  # noqa: E402

from benchmarks.shared import finish  # noqa: E402
from common.services import SERVICES  # noqa: E402
from harness.speech import librivox_clips  # noqa: E402

Request = Callable[[httpx.Client, random.Random], httpx.Response]
TEXTS = [
    "hello world",
    "如何重置我的密码",
    "忘记密码怎么办",
    "python web framework",
    "这家餐厅的菜很好吃",
    "the quick brown fox jumps over the lazy dog",
    "向量检索与重排序",
    "how do I reset my password",
]


def embedding_requests() -> list[Request]:
    return [
        lambda c, r: c.get(f"/Qwen3-Embedding-4B/{r.choice(TEXTS)}"),
        lambda c, r: c.post("/all-MiniLM-L6-v2", json={"texts": r.sample(TEXTS, r.randint(1, 6))}),
        lambda c, r: c.post("/similarity", json={"a": r.choice(TEXTS), "b": r.choice(TEXTS)}),
        lambda c, r: c.post("/rerank", json={"query": r.choice(TEXTS), "candidates": r.sample(TEXTS, 4)}),
        lambda c, r: c.post("/v1/embeddings", json={"input": r.choice(TEXTS), "model": "all-MiniLM-L6-v2"}),
    ]


def asr_requests() -> list[Request]:
    clips = [path.read_bytes() for path, _ in librivox_clips()]
    return [
        lambda c, r: c.post("/asr", files={"file": ("a.wav", r.choice(clips))}),
        lambda c, r: c.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", r.choice(clips))},
            data={"model": "whisper-1", "response_format": "text"},
        ),
    ]


def llm_requests() -> list[Request]:
    def chat(path: str) -> Request:
        return lambda c, r: c.post(
            path, json={"messages": [{"role": "user", "content": r.choice(TEXTS)}], "max_tokens": 16}
        )

    return [chat("/api/chat"), chat("/api/chat/stream"), chat("/v1/chat/completions")]


SPOKEN = [
    "你好，这是默认风格的测试。",
    "The quick brown fox jumps over the lazy dog.",
    "今天的气温是25度，比昨天高了3%。",
    "Your order of $12.50 ships on 2024-03-05.",
]


def tts_requests() -> list[Request]:
    reference = librivox_clips()[1][0].read_bytes()
    return [
        lambda c, r: c.post("/synthesize", data={"text": r.choice(SPOKEN), "style": r.choice(["style1", "style2"])}),
        lambda c, r: c.post(
            "/synthesize", data={"text": r.choice(SPOKEN)}, files={"prompt_audio": ("p.wav", reference)}
        ),
        lambda c, r: c.post("/synthesize/stream", data={"text": r.choice(SPOKEN)}),
        lambda c, r: c.post(
            "/v1/audio/speech", json={"input": r.choice(SPOKEN), "voice": "alloy", "response_format": "mp3"}
        ),
    ]


MIXES = {"embedding": embedding_requests, "asr": asr_requests, "llm": llm_requests, "tts": tts_requests}


def rss_mib(service: str) -> float | None:
    from services import read_pid  # scripts/services.py
    from services import rss_mib as process_rss

    pid = read_pid(SERVICES[service])
    return process_rss(pid) if pid else None


def hammer(
    url: str, mix: list[Request], clients: int, seconds: float, failures: list[str] | None = None
) -> tuple[list[float], collections.Counter[str], float]:
    """``clients`` threads sending random requests from ``mix`` for ``seconds``: (latencies, statuses, elapsed).

    With ``failures``, each answer other than 200 or 429 is appended to it with its time and detail."""
    latencies: list[float] = []
    statuses: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, timeout=120) as http:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                retry_after = 0.0
                try:
                    response = rng.choice(mix)(http, rng)
                    status, detail = str(response.status_code), response.text[:200]
                    if response.status_code == 429:  # back off as a well-behaved client does
                        retry_after = min(float(response.headers.get("Retry-After", 1)), 10.0)
                except httpx.HTTPError as exc:
                    status, detail = type(exc).__name__, str(exc)
                with lock:
                    latencies.append(time.perf_counter() - started)
                    statuses[status] += 1
                    if failures is not None and status not in {"200", "429"}:
                        failures.append(f"{time.strftime('%X')} {status}: {detail}")
                time.sleep(min(retry_after, max(0.0, deadline - time.monotonic())))

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 180)
    return latencies, statuses, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", required=True, choices=sorted(MIXES))
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--warmup", type=float, default=15, help="seconds of the same load before RSS is taken (0: measure cold)"
    )
    parser.add_argument("--url", help="default: the configured host and port")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    args = parser.parse_args()
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 3600 or not 0 <= args.warmup <= 600:
        parser.error("clients must be 1-256, seconds 0-3600 and warmup 0-600")
    settings = SERVICES[args.service].settings_class().load()
    url = args.url or f"http://127.0.0.1:{settings.server.port}"
    mix = MIXES[args.service]()
    cold = rss_mib(args.service)
    warm_errors = 0
    if args.warmup:
        _, warm_statuses, _ = hammer(url, mix, args.clients, args.warmup)
        warm_errors = sum(n for s, n in warm_statuses.items() if s not in {"200", "429"})
    before = rss_mib(args.service)
    latencies, statuses, elapsed = hammer(url, mix, args.clients, args.seconds)
    after = rss_mib(args.service)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    errors = sum(n for s, n in statuses.items() if s not in {"200", "429"}) + warm_errors
    result = {
        "benchmark": "load",
        "service": args.service,
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "requests": len(latencies),
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "p50_p95_p99_ms": [round(quantiles[i] * 1000) for i in (49, 94, 98)],
        "statuses": dict(statuses),
        "rss_mib_cold_warm_end": [cold, before, after],
        "ratios": {"errors other than 429 (goal <= 0)": errors},
    }
    if before and after:
        result["ratios"]["RSS growth during the run, % (goal <= 10)"] = round((after - before) / before * 100, 1)
    if not args.json:
        print(
            f"{args.service}: {args.clients} clients x {args.seconds:.0f} s against {url}, "
            f"after {args.warmup:.0f} s warm-up"
        )
        print(
            f"requests {len(latencies)}  throughput {len(latencies) / elapsed:.1f}/s  "
            f"p50 {quantiles[49] * 1000:.0f} ms  p95 {quantiles[94] * 1000:.0f} ms  p99 {quantiles[98] * 1000:.0f} ms"
        )
        print("status counts:", dict(statuses))
        if cold and before and after:
            print(
                f"RSS {cold:.0f} MiB cold, {before:.0f} MiB after warm-up -> {after:.0f} MiB "
                f"({(after - before) / before:+.1%} during the run)"
            )
    return finish(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
