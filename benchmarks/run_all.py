"""Run every benchmark and print one table: metric, measured value, goal, pass/fail.

    .venv/bin/python benchmarks/run_all.py [--only embedding,asr,batching,live,llm,tts,voice] [--quick]
        [--json results.json]

Each benchmark measures its ratios side by side in one run and stops by itself (a few minutes each on
2 cores, the live and voice ones longer); they run one after another so they never compete for the cores.
``--quick`` runs each in its shortest mode (a smoke test: the figures mean little). ``--json`` also writes
every result, with the date, machine and command, for ``benchmarks/report.py`` (which keeps the table in
docs/benchmarks.md). Exits 1 when a goal is missed or a benchmark fails.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.shared import verdicts  # noqa: E402

BENCHMARKS = {
    "embedding": "embedding_bench.py",
    "asr": "asr_bench.py",
    "batching": "asr_batching.py",
    "live": "live_bench.py",
    "llm": "llm_bench.py",
    "tts": "tts_bench.py",
    "voice": "voice_bench.py",
    "agent": "agent_bench.py",
}
QUICK = {
    "embedding": ["--seconds", "2", "--no-peer"],
    "asr": ["--rounds", "1"],
    "batching": ["--rounds", "1", "--load-seconds", "10"],
    "live": ["--no-peer", "--no-chinese", "--load-seconds", "10", "--sessions", "2"],
    "llm": ["--rounds", "1", "--conversations", "1", "--max-tokens", "32"],
    "tts": ["--rounds", "1"],
    "voice": ["--rounds", "1"],
    "agent": ["--rounds", "1", "--no-console"],
}
"""Each benchmark's shortest mode, for ``--quick``."""


def machine() -> str:
    """The machine in a few words: cores and CPU model."""
    model = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}"


def run(name: str, extra: list[str]) -> dict[str, Any]:
    """Run one benchmark with --json and return its result (its last stdout line).

    Raises:
        RuntimeError: it crashed or printed no result.
    """
    command = [sys.executable, str(HERE / BENCHMARKS[name]), "--json", *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"{name} benchmark failed ({done.returncode}):\n{done.stderr[-2000:]}") from None
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    shown = " ".join(["benchmarks/" + BENCHMARKS[name], *extra])
    return {**result, "benchmark": name, "date": stamp, "machine": machine(), "command": shown}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="each benchmark's shortest mode (a smoke test)")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    print(f"# Benchmarks, {machine()}, {datetime.date.today().isoformat()}\n")
    print(f"| {'benchmark':<9} | {'metric':<60} | {'measured':>9} | {'goal':>7} | {'result':<6} |")
    print(f"|{'-' * 11}|{'-' * 62}|{'-' * 11}|{'-' * 9}|{'-' * 8}|")
    failed = 0
    results = []
    for name in names:
        try:
            result = run(name, QUICK[name] if args.quick else [])
        except RuntimeError as error:
            print(f"| {name:<9} | {'did not finish (see below)':<60} | {'-':>9} | {'-':>7} | FAIL   |", flush=True)
            print(error, file=sys.stderr)
            failed += 1
            continue
        results.append(result)
        for metric, value, goal, verdict in verdicts(result["ratios"]):
            failed += verdict == "FAIL"
            print(f"| {name:<9} | {metric:<60} | {value:>9} | {goal:>7} | {verdict:<6} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"runs": results}, indent=1, ensure_ascii=False, default=str) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
