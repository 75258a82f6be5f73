"""Run every service benchmark and print one table: metric, measured value, goal, pass/fail.

    .venv/bin/python benchmarks/run_all.py [--only embedding,asr,llm,tts]   # default: each <service>_bench.py

Each benchmark measures its ratios side by side in one run and stops by itself (a few minutes each on
2 cores); they run one after another so they never compete for the cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from common.services import SERVICES  # noqa: E402

BENCHMARKS = {name: f"{name}_bench.py" for name in SERVICES if (HERE / f"{name}_bench.py").exists()}
GOAL = re.compile(r"\(goal ([<>]=) ([\d.]+)\)")


def run(name: str) -> dict:
    """Run one benchmark with --json and return its result."""
    done = subprocess.run(
        [sys.executable, str(HERE / BENCHMARKS[name]), "--json"], capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} benchmark failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows(result: dict) -> list[tuple[str, float, str, str]]:
    """(metric, value, goal, verdict) for each ratio of a benchmark result."""
    table = []
    for metric, value in result["ratios"].items():
        match = GOAL.search(metric)
        label = GOAL.sub("", metric).strip()
        if match is None:
            table.append((label, value, "-", "-"))
            continue
        op, target = match.group(1), float(match.group(2))
        passed = value >= target if op == ">=" else value <= target
        table.append((label, value, f"{op} {target:g}", "pass" if passed else "FAIL"))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    print(f"# Benchmarks, {os.cpu_count()} cores, {datetime.date.today().isoformat()}\n")
    print(f"| {'service':<9} | {'metric':<52} | {'measured':>9} | {'goal':>7} | {'result':<6} |")
    print(f"|{'-' * 11}|{'-' * 54}|{'-' * 11}|{'-' * 9}|{'-' * 8}|")
    failed = 0
    for name in names:
        for metric, value, goal, verdict in rows(run(name)):
            failed += verdict == "FAIL"
            print(f"| {name:<9} | {metric:<52} | {value:>9} | {goal:>7} | {verdict:<6} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
