"""LLM speed measured side by side in one run, same GGUF, same prompts, greedy decoding.

    .venv/bin/python benchmarks/llm_bench.py [--max-tokens 128] [--rounds 2]

Decode tokens/s and time to first token (TTFT) for:
(a) llama-cpp-python in-process; (b) llama.cpp's own OpenAI server (python -m llama_cpp.server);
(c) this service's /api/chat/stream (local backend). Ratios c/a (goal >= 0.95) and TTFT c - a (goal
<= 20 ms). Then the proxy backend's added latency: p50 of the same tiny request through our proxy in
front of llama.cpp's server minus p50 straight to that server (goal <= 5 ms). Phases run one after
another so they never compete for the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import yaml  # noqa: E402

from harness.launch import free_port, launch  # noqa: E402
from llm_service.backends.llama_cpp import LlamaCppOptions, prepare_bundled_qwen  # noqa: E402
from llm_service.settings import LlmSettings  # noqa: E402

PROMPTS = [
    "Write a Python function that checks whether a string is a palindrome, with a docstring.",
    "用三句话解释什么是递归。",
    "Explain the difference between a list and a tuple in Python.",
]


def measure(stream: Callable[[str, int], Iterator[str]], max_tokens: int, rounds: int) -> tuple[float, float]:
    """(median TTFT in s, decode tokens/s over all runs) for a token iterator per prompt."""
    ttfts, tokens, decode_time = [], 0, 0.0
    for _ in range(rounds):
        for prompt in PROMPTS:
            started = time.perf_counter()
            first = last = None
            count = 0
            for piece in stream(prompt, max_tokens):
                if not piece:
                    continue
                now = time.perf_counter()
                first = first or now
                last = now
                count += 1
            if first is None or last is None:
                continue
            ttfts.append(first - started)
            tokens += count - 1
            decode_time += last - first
    return statistics.median(ttfts), tokens / decode_time


def in_process(model: Path, settings: LlmSettings, max_tokens: int, rounds: int) -> tuple[float, float]:
    from llama_cpp import Llama

    options = LlamaCppOptions.model_validate(settings.options)
    llm = Llama(
        model_path=str(model),
        n_ctx=options.n_ctx,
        n_batch=options.n_batch,
        n_threads=settings.cpu_threads,
        n_threads_batch=settings.cpu_threads,
        verbose=False,
    )

    def stream(prompt: str, limit: int) -> Iterator[str]:
        for chunk in llm.create_chat_completion(
            [{"role": "user", "content": prompt}], max_tokens=limit, temperature=0, seed=1, stream=True
        ):
            yield chunk["choices"][0]["delta"].get("content") or ""

    list(stream(PROMPTS[0], 4))  # warm-up
    result = measure(stream, max_tokens, rounds)
    llm.close()
    return result


def sse_tokens(url: str, prompt: str, limit: int, model: str) -> Iterator[str]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": limit,
        "temperature": 0,
        "seed": 1,
        "stream": True,
    }
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = json.loads(line[6:])
                if chunk.get("choices"):
                    yield chunk["choices"][0]["delta"].get("content") or ""


def ndjson_tokens(client: httpx.Client, prompt: str, limit: int) -> Iterator[str]:
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": limit, "temperature": 0, "seed": 1}
    with client.stream("POST", "/api/chat/stream", json=body) as response:
        for line in response.iter_lines():
            if line:
                yield json.loads(line).get("delta") or ""


def start_llama_server(model: Path, settings: LlmSettings) -> tuple[subprocess.Popen, str]:
    port = free_port()
    options = LlamaCppOptions.model_validate(settings.options)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            settings.model_name,
            "--n_ctx",
            str(options.n_ctx),
            "--n_batch",
            str(options.n_batch),
            "--n_threads",
            str(settings.cpu_threads),
            "--n_threads_batch",
            str(settings.cpu_threads),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("llama.cpp server did not start")


def p50_latency(url: str, path: str, rounds: int) -> float:
    body = {
        "model": "Qwen2.5-Coder-0.5B-Instruct",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 1,
        "temperature": 0,
    }
    times = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            client.post(path, json=body).raise_for_status()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = LlmSettings.load()
    model = prepare_bundled_qwen()

    a_ttft, a_tps = in_process(model, settings, args.max_tokens, args.rounds)
    server, server_url = start_llama_server(model, settings)
    try:
        list(sse_tokens(server_url, PROMPTS[0], 4, settings.model_name))
        b_ttft, b_tps = measure(
            lambda p, n: sse_tokens(server_url, p, n, settings.model_name), args.max_tokens, args.rounds
        )
        with tempfile.TemporaryDirectory() as run_dir:
            config = Path(run_dir) / "proxy.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "server": {"port": 7207},
                        "cpu_threads": 1,
                        "backend": "openai_upstream",
                        "model_name": settings.model_name,
                        "options": {"base_url": f"{server_url}/v1", "model": settings.model_name},
                    }
                )
            )
            with launch("llm", Path(run_dir), env={"LLM_CONFIG": str(config)}) as proxy:
                p50_latency(proxy.url, "/v1/chat/completions", 3)
                direct, through = [], []
                for _ in range(5):  # interleaved so drift hits both alike
                    direct.append(p50_latency(server_url, "/v1/chat/completions", 6))
                    through.append(p50_latency(proxy.url, "/v1/chat/completions", 6))
    finally:
        server.kill()
        server.wait()
    with (
        tempfile.TemporaryDirectory() as run_dir,
        launch("llm", Path(run_dir)) as service,
        httpx.Client(base_url=service.url, timeout=300) as client,
    ):
        list(ndjson_tokens(client, PROMPTS[0], 4))
        c_ttft, c_tps = measure(lambda p, n: ndjson_tokens(client, p, n), args.max_tokens, args.rounds)

    added_ms = (statistics.median(through) - statistics.median(direct)) * 1000
    result = {
        "benchmark": "llm",
        "model": settings.model_name,
        "cores": os.cpu_count(),
        "max_tokens": args.max_tokens,
        "in_process": {"ttft_ms": round(a_ttft * 1000, 1), "decode_tok_s": round(a_tps, 1)},
        "llama_cpp_server": {"ttft_ms": round(b_ttft * 1000, 1), "decode_tok_s": round(b_tps, 1)},
        "service": {"ttft_ms": round(c_ttft * 1000, 1), "decode_tok_s": round(c_tps, 1)},
        "ratios": {
            "service / in-process decode (goal >= 0.95)": round(c_tps / a_tps, 3),
            "service / llama.cpp server decode": round(c_tps / b_tps, 3),
            "service TTFT - in-process TTFT, ms (goal <= 20)": round((c_ttft - a_ttft) * 1000, 1),
            "proxy added p50 latency, ms (goal <= 5)": round(added_ms, 2),
        },
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{settings.model_name} Q4_K_M, {os.cpu_count()} cores, {settings.cpu_threads} threads, "
            f"{len(PROMPTS)} prompts x {args.rounds}, up to {args.max_tokens} tokens, greedy"
        )
        for label, (ttft, tps) in (
            ("(a) in-process llama-cpp-python", (a_ttft, a_tps)),
            ("(b) llama.cpp's own server (SSE)", (b_ttft, b_tps)),
            ("(c) service /api/chat/stream", (c_ttft, c_tps)),
        ):
            print(f"{label:<36} TTFT {ttft * 1000:7.1f} ms   decode {tps:6.1f} tok/s")
        for name, value in result["ratios"].items():
            print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
