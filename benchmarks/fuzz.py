"""A larger schemathesis run (random seed) against running services; the test suite runs a small one.

    .venv/bin/python benchmarks/fuzz.py [--examples 100] [--json] [NAME ...]   # default: every service

Needs the services up (scripts/start_all.sh). Exit code 1 if any service answered 5xx or broke its schema.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.shared import finish  # noqa: E402
from common.services import SERVICES  # noqa: E402
from harness.launch import RunningService, fuzz  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("names", nargs="*", default=list(SERVICES))
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    args = parser.parse_args()
    failures: dict[str, float] = {}
    for name in args.names:
        port = SERVICES[name].settings_class().load().server.port
        service = RunningService(name, f"http://127.0.0.1:{port}", REPO / "run", {})
        done = fuzz(service, args.examples, seed=None)
        summary = [line for line in done.stdout.splitlines() if "generated" in line or "failure" in line]
        print(f"{name}: {'ok' if done.returncode == 0 else 'FAILED'} {' '.join(s.strip() for s in summary)}")
        failures[f"{name}: schemathesis run failed (goal <= 0)"] = int(done.returncode != 0)
        if done.returncode != 0:
            print(done.stdout[-6000:])
    return finish({"benchmark": "fuzz", "examples": args.examples, "ratios": failures}, args.json)


if __name__ == "__main__":
    sys.exit(main())
