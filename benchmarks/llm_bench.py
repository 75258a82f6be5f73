"""LLM speed side by side in one run: this service vs llama.cpp's llama-server called directly (the peer).

    .venv/bin/python benchmarks/llm_bench.py [--max-tokens 128] [--rounds 2] [--json]

Both sides run the same llama-server binary with the same arguments (the peer is started from the
service's own options in configs/llm.yaml), the same GGUF and prompts, greedy decoding, OpenAI SSE.
Phases run one after another so they never compete for the cores:

1. one stream at a time, interleaved prompt by prompt (who goes first alternating by round), the prompts
   sent to both sides first: decode tokens/s (goal: service >= 0.97x direct) and the median of each
   prompt's service TTFT minus its direct TTFT (goal <= 10 ms). The difference of the two sides' medians
   moved from -17 to +36 ms between runs, while each side's median ranged over 150-210 ms;
2. 4 concurrent streams of answers that run to ``--max-tokens``, ``--rounds`` times, direct and service in
   turn (the first alternating), their prompts cached on both sides first: aggregate tokens/s over all
   rounds (goal >= 0.95x direct), none empty. With phase 1's questions, whose answers stop anywhere from 17
   to 128 tokens, one run of each side swung from 0.80x to 1.23x on a quiet machine. Then, once on the
   service, 4 streams of phase 1's questions: the last first token (goal <= 3x a lone request's TTFT in
   phase 1; for 4 code requests llama-server alone gives the last its first token 4-6x later);
3. 8 and 16 concurrent: aggregate tokens/s, TTFT p50/p95, requests refused with 429 (service only:
   llama-server queues without bound);
4. turn 5 of a conversation with ~1,500 tokens of history: TTFT vs the same prompt sent cold
   (``cache_prompt: false``) (goal <= 0.3x);
5. 4 streams, 3 disconnected mid-way: the 4th's tokens/s before and in the first second after, and
   how long after the disconnect its token gap first drops below 0.8x the gap before.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from benchmarks.shared import (  # noqa: E402
    finish,
    http_ready,
    peer_server,
)
from harness.launch import free_port, launch  # noqa: E402
from llm_service.backends.llama_server import LlamaServerOptions, model_file, server_command, server_env  # noqa: E402
from llm_service.settings import LlmSettings  # noqa: E402

PROMPTS = [
    "Write a Python function that checks whether a string is a palindrome, with a docstring.",
    "用三句话解释什么是递归。",
    "Explain the difference between a list and a tuple in Python.",
    "Write a SQL query that finds the ten customers with the highest total order value.",
    "Describe how a hash map works and what happens on a collision.",
]
LONG_ANSWERS = [
    "Write a Python class for a bounded LRU cache with get, put and delete, fully type-hinted, with docstrings.",
    "Write a Flask application with routes to create, list, update and delete notes stored in SQLite.",
    "Write a command-line tool in Python that parses an nginx access log and prints requests per endpoint.",
    "Write pytest tests for a function that merges overlapping intervals, covering every edge case.",
]
"""Concurrent streams' prompts: each answer runs to ``--max-tokens``, so every stream is as long and the
aggregate rate does not swing with how early a short answer stops (with :data:`PROMPTS`, answers of 17 to
128 tokens made one run of each side differ by up to 40 %)."""
TOPICS = [
    "a small inventory service written in Python with Flask, SQLite and a background job that re-orders stock",
    "a command-line tool that parses web server logs, counts requests per endpoint and reports slow ones",
    "a caching layer in front of a slow HTTP API, with expiry, size limits and metrics",
    "a test suite for a payment module, with fixtures, mocks for the bank API and property-based tests",
]


@dataclass
class Stream:
    """One streamed request: when it started, when each token arrived, how it ended."""

    started: float
    status: int = 0
    stamps: list[float] = field(default_factory=list)

    @property
    def ttft(self) -> float | None:
        return self.stamps[0] - self.started if self.stamps else None

    @property
    def decode_rate(self) -> float | None:
        if len(self.stamps) < 2:
            return None
        return (len(self.stamps) - 1) / (self.stamps[-1] - self.stamps[0])


def stream_chat(
    client: httpx.Client,
    body: dict[str, Any],
    stop: threading.Event | None = None,
    on_token: Callable[[], None] | None = None,
) -> Stream:
    """POST a streamed chat completion; record each content token's arrival. ``stop`` set: disconnect."""
    result = Stream(time.perf_counter())
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        result.status = response.status_code
        if response.status_code != 200:
            response.read()
            return result
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                result.stamps.append(time.perf_counter())
                if on_token is not None:
                    on_token()
            if stop is not None and stop.is_set():
                break
    return result


def chat_body(prompt: str | list[dict[str, Any]], max_tokens: int, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return {"messages": messages, "max_tokens": max_tokens, "temperature": 0, "seed": 1, **extra}


def single(url: str, max_tokens: int, prompts: list[str]) -> list[Stream]:
    """Each prompt streamed on its own connection: llama-server drops a kept-alive one after a stream that
    ``max_tokens`` stopped, so the next request on it would fail."""
    streams = []
    for prompt in prompts:
        with httpx.Client(base_url=url, timeout=300) as client:
            streams.append(stream_chat(client, chat_body(prompt, max_tokens)))
    return streams


def concurrent(url: str, count: int, max_tokens: int, prompts: list[str] = LONG_ANSWERS) -> tuple[list[Stream], float]:
    """``count`` streams started together; (their results, wall time from the start to the last token)."""
    results: list[Stream | None] = [None] * count
    barrier = threading.Barrier(count + 1)

    def run(index: int) -> None:
        with httpx.Client(base_url=url, timeout=600) as client:
            barrier.wait()
            results[index] = stream_chat(client, chat_body(prompts[index % len(prompts)], max_tokens))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    done = [r for r in results if r is not None]
    ended = max((r.stamps[-1] for r in done if r.stamps), default=began)
    return done, ended - began


def summarise_concurrent(streams: list[Stream], wall: float, began_offset: bool = True) -> dict[str, Any]:
    served = [s for s in streams if s.status == 200]
    ttfts = sorted(s.ttft for s in served if s.ttft is not None)
    tokens = sum(len(s.stamps) for s in served)
    return {
        "aggregate_tok_s": round(tokens / wall, 1) if wall > 0 else 0.0,
        "ttft_p50_ms": round(statistics.median(ttfts) * 1000, 1) if ttfts else None,
        "ttft_p95_ms": round(ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))] * 1000, 1) if ttfts else None,
        "last_first_token_ms": round(max(ttfts) * 1000, 1) if ttfts else None,
        "served": len(served),
        "empty": sum(1 for s in served if not s.stamps),
        "refused_429": sum(1 for s in streams if s.status == 429),
    }


def conversation_turn5(url: str, index: int) -> dict[str, float]:
    """Turns 1-4 of a long conversation, then turn 5 warm (prompt cache) and the same prompt cold."""
    topic = TOPICS[index % len(TOPICS)]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": f"Session {index}. You are a senior engineer reviewing {topic}."}
    ]
    asks = [
        "Describe the overall architecture: modules, data flow, error handling and configuration.",
        "Now sketch the core module as Python code with type hints.",
        "Which unit tests would you write for that module?",
        "List the main risks in this design and how to mitigate each one.",
    ]
    notes = " ".join(f"Requirement {n}: the {topic} must handle case {n} without losing data." for n in range(12))
    with httpx.Client(base_url=url, timeout=600) as client:
        for ask in asks:  # each turn carries ~250 tokens of notes, each answer up to 120 tokens
            messages.append({"role": "user", "content": f"{ask} Notes for this step: {notes}"})
            answer = client.post("/v1/chat/completions", json=chat_body(messages, 120)).json()
            messages.append({"role": "assistant", "content": answer["choices"][0]["message"]["content"]})
        messages.append({"role": "user", "content": "Summarise our discussion in two sentences."})
        warm = stream_chat(client, chat_body(messages, 8))
        cold = stream_chat(client, chat_body(messages, 8, cache_prompt=False))
        usage = client.post("/v1/chat/completions", json=chat_body(messages, 1)).json()["usage"]
    return {"prompt_tokens": usage["prompt_tokens"], "warm_s": warm.ttft or 0.0, "cold_s": cold.ttft or 0.0}


def disconnect_three(url: str, max_tokens: int) -> dict[str, float]:
    """4 streams; once each has 30 tokens, 3 disconnect. The 4th's token rate before and after."""
    stops = [threading.Event() for _ in range(4)]
    counts = [0] * 4
    progressed = threading.Condition()
    results: list[Stream | None] = [None] * 4

    def run(index: int) -> None:
        def tick() -> None:
            with progressed:
                counts[index] += 1
                progressed.notify_all()

        with httpx.Client(base_url=url, timeout=600) as client:
            body = chat_body(f"Write a very long, detailed story about {TOPICS[index]}.", max_tokens)
            results[index] = stream_chat(client, body, stops[index], tick)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    with progressed:
        progressed.wait_for(lambda: min(counts) >= 30)
    cut = time.perf_counter()
    for stop in stops[:3]:
        stop.set()
    for thread in threads:
        thread.join()
    last = results[3]
    assert last is not None
    before = [t for t in last.stamps if cut - 1.5 <= t < cut]
    after = [t for t in last.stamps if cut <= t < cut + 1.0]
    gaps_before = [b - a for a, b in itertools.pairwise(before)]
    threshold = 0.8 * statistics.median(gaps_before) if gaps_before else 0.0
    after_all = [t for t in last.stamps if t >= cut]
    sped_up = next(
        (b - cut for a, b in itertools.pairwise(after_all) if b - a < threshold),
        float("nan"),
    )
    return {
        "rate_before_tok_s": len(before) / 1.5,
        "rate_first_second_after_tok_s": float(len(after)),
        "sped_up_after_ms": sped_up * 1000,
    }


@contextlib.contextmanager
def direct_server(settings: LlmSettings) -> Iterator[str]:
    """llama-server with the service's own arguments, on a free port, for the duration; yields its URL."""
    options = LlamaServerOptions.model_validate(settings.options)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = server_command(options, model_file(options), settings.cpu_threads, port)
    with peer_server(command, http_ready(f"{url}/health"), name="llama-server", env=server_env()):
        yield url


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ratio(a: float | None, b: float | None) -> float:
    """a / b, or NaN (a failed goal) when either is missing."""
    return round(a / b, 3) if a is not None and b else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--conversations", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = LlmSettings.load()
    result: dict[str, Any] = {"benchmark": "llm", "model": settings.model_name, "cores": os.cpu_count()}
    result["compared_with"] = "llama-server called directly (same binary, arguments and GGUF)"
    with (
        direct_server(settings) as direct,
        tempfile.TemporaryDirectory() as run_dir,
        launch("llm", Path(run_dir)) as service,
    ):
        targets = {"direct": direct, "service": service.url}
        for url in targets.values():  # every prompt cached on both sides, so TTFT measures the proxy
            single(url, 4, PROMPTS)
        ones: dict[str, list[Stream]] = {"direct": [], "service": []}
        progress("one stream at a time")
        for round_index in range(args.rounds):  # interleaved prompt by prompt, so drift hits both alike
            order = list(targets.items())[:: 1 if round_index % 2 == 0 else -1]  # who goes first alternates
            for prompt in PROMPTS:
                for name, url in order:
                    ones[name] += single(url, args.max_tokens, [prompt])
        pairs = [s.ttft - d.ttft for s, d in zip(ones["service"], ones["direct"], strict=True) if s.ttft and d.ttft]
        result["one_stream_ttft_paired_ms"] = round(statistics.median(pairs) * 1000, 1) if pairs else float("nan")
        lone: dict[str, float] = {}
        for name, streams in ones.items():
            lone[name] = statistics.median(s.ttft for s in streams if s.ttft is not None)
            tokens = sum(len(s.stamps) - 1 for s in streams if s.stamps)
            decode_time = sum(s.stamps[-1] - s.stamps[0] for s in streams if s.stamps)
            result[f"one_stream_{name}"] = {
                "ttft_p50_ms": round(lone[name] * 1000, 1),
                "decode_tok_s": round(tokens / decode_time, 1),
            }
            progress(f"  {name}: {result[f'one_stream_{name}']}")
        first_tokens = summarise_concurrent(*concurrent(service.url, 4, args.max_tokens, PROMPTS))
        result["concurrent_4_short_questions_service"] = first_tokens
        for url in targets.values():  # the concurrent runs find their prompts cached on both sides alike
            single(url, 2, LONG_ANSWERS)
        for count in (4, 8, 16):
            progress(f"{count} concurrent streams")
            runs: dict[str, list[tuple[list[Stream], float]]] = {name: [] for name in targets}
            for round_index in range(args.rounds if count == 4 else 1):
                order = list(targets.items())
                for name, url in order[::-1] if round_index % 2 else order:
                    runs[name].append(concurrent(url, count, args.max_tokens))
            for name, taken in runs.items():
                streams = [stream for run, _ in taken for stream in run]
                result[f"concurrent_{count}_{name}"] = summarise_concurrent(streams, sum(wall for _, wall in taken))
                progress(f"  {name}: {result[f'concurrent_{count}_{name}']}")
        progress("turn 5 of a long conversation")
        turns = [conversation_turn5(service.url, i) for i in range(args.conversations)]
        result["turn5"] = {
            "prompt_tokens": turns[0]["prompt_tokens"],
            "warm_ttft_ms": round(statistics.median(t["warm_s"] for t in turns) * 1000, 1),
            "cold_ttft_ms": round(statistics.median(t["cold_s"] for t in turns) * 1000, 1),
        }
        progress(f"  {result['turn5']}")
        progress("3 of 4 streams disconnect")
        for name, url in targets.items():
            cut = disconnect_three(url, 600)
            result[f"disconnect_{name}"] = {k: round(v, 1) for k, v in cut.items()}
            progress(f"  {name}: {result[f'disconnect_{name}']}")
    one_s, one_d = result["one_stream_service"], result["one_stream_direct"]
    four_s, four_d = result["concurrent_4_service"], result["concurrent_4_direct"]
    result["ratios"] = {
        "one stream decode, service / direct (goal >= 0.97)": ratio(one_s["decode_tok_s"], one_d["decode_tok_s"]),
        "one stream TTFT, service - direct, median of pairs, ms (goal <= 10)": result["one_stream_ttft_paired_ms"],
        "4 concurrent aggregate, service / direct (goal >= 0.95)": ratio(
            four_s["aggregate_tok_s"], four_d["aggregate_tok_s"]
        ),
        "4 concurrent last first token / lone TTFT, service (goal <= 3)": ratio(
            first_tokens["last_first_token_ms"], one_s["ttft_p50_ms"]
        ),
        "turn 5 TTFT warm / cold (goal <= 0.3)": ratio(
            result["turn5"]["warm_ttft_ms"], result["turn5"]["cold_ttft_ms"]
        ),
        "4th stream tokens/s after 3 disconnect / before, service": ratio(
            result["disconnect_service"]["rate_first_second_after_tok_s"],
            result["disconnect_service"]["rate_before_tok_s"],
        ),
        "4th stream faster after 3 disconnect, service, s (goal <= 1)": round(
            result["disconnect_service"]["sped_up_after_ms"] / 1000, 3
        ),
    }
    if not args.json:
        print(
            f"{settings.model_name} Q4_K_M, {os.cpu_count()} cores, {settings.cpu_threads} threads, "
            f"{settings.options.get('parallel')} slots, up to {args.max_tokens} tokens, greedy"
        )
        for name, value in result.items():
            if isinstance(value, dict) and name != "ratios":
                print(f"{name:<24} {json.dumps(value)}")
    return finish(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
