"""Embedding throughput, measured side by side in one run on the same model and texts.

    .venv/bin/python benchmarks/embedding_bench.py [--model all-MiniLM-L6-v2] [--seconds 15] [--clients 16]

(a) in-process: the engine's backend encoding batches of 32 texts, no HTTP;
(b) the service under gunicorn, N concurrent clients each POSTing one text per request to /v1/embeddings;
(c) the same service with micro-batching disabled (max_batch_size 1).
Prints texts/s for each and the ratios b/a (goal >= 0.7) and b/c (goal >= 3). Each phase runs alone,
so the phases don't compete for the cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from embedding_service.backends import BACKENDS  # noqa: E402
from embedding_service.settings import EmbeddingSettings  # noqa: E402
from harness.launch import launch  # noqa: E402

WORDS = [
    *[
        "service",
        "model",
        "request",
        "vector",
        "search",
        "query",
        "document",
        "python",
        "flask",
        "latency",
        "batch",
        "token",
    ],
    *["memory", "thread", "cluster", "answer", "question", "password", "reset", "weather", "music", "travel"],
]


def sentences(n: int) -> list[str]:
    """Short, distinct English sentences (8-16 words), like one chat turn or search query each."""
    return [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(8 + i % 9)) + f" #{i}" for i in range(n)]


def in_process(model: str, seconds: float, batch: int = 32) -> float:
    settings = EmbeddingSettings.load()
    spec = settings.models[model]
    backend = BACKENDS.create(spec.backend, spec.backend_options(), settings.cpu_threads)
    texts = sentences(4096)
    backend.encode(texts[:batch], "query")
    done, started, i = 0, time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        backend.encode(texts[i : i + batch], "query")
        done += batch
        i = (i + batch) % (len(texts) - batch)
    rate = done / (time.perf_counter() - started)
    backend.close()
    return rate


def over_http(url: str, model: str, seconds: float, clients: int) -> tuple[float, int]:
    """Texts/s with ``clients`` keep-alive connections, one text per request; returns (rate, errors)."""
    host, port = url.removeprefix("http://").split(":")
    texts = sentences(4096)
    counts = [0] * clients
    errors = [0] * clients
    stop = threading.Event()

    def client(k: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        i = k
        while not stop.is_set():
            body = json.dumps({"input": texts[i % len(texts)], "model": model})
            connection.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                counts[k] += 1
            else:
                errors[k] += 1
            i += clients

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    time.sleep(2)  # warm-up
    start_count, started = sum(counts), time.perf_counter()
    time.sleep(seconds)
    rate = (sum(counts) - start_count) / (time.perf_counter() - started)
    stop.set()
    for t in threads:
        t.join(30)
    return rate, sum(errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    a = in_process(args.model, args.seconds)
    with tempfile.TemporaryDirectory() as run_dir:
        with launch("embedding", Path(run_dir)) as service:
            b, b_errors = over_http(service.url, args.model, args.seconds, args.clients)
        with launch("embedding", Path(run_dir), env={"EMBEDDING__BATCHING__MAX_BATCH_SIZE": "1"}) as service:
            c, c_errors = over_http(service.url, args.model, args.seconds, args.clients)
    result = {
        "benchmark": "embedding",
        "model": args.model,
        "cores": os.cpu_count(),
        "clients": args.clients,
        "in_process_batch32_texts_per_s": round(a, 1),
        "service_texts_per_s": round(b, 1),
        "service_unbatched_texts_per_s": round(c, 1),
        "errors": b_errors + c_errors,
        "ratios": {
            "service / in-process (goal >= 0.7)": round(b / a, 3),
            "batched / unbatched (goal >= 3)": round(b / c, 3),
        },
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"model {args.model}, {os.cpu_count()} cores, {args.clients} clients, {args.seconds:.0f} s per phase")
        print(f"(a) in-process, batch 32          {a:8.1f} texts/s")
        print(f"(b) service, one text per request {b:8.1f} texts/s   ({b_errors} errors)")
        print(f"(c) service, batching disabled    {c:8.1f} texts/s   ({c_errors} errors)")
        print(f"b/a = {b / a:.2f} (goal >= 0.7)   b/c = {b / c:.2f} (goal >= 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
