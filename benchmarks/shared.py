"""What the benchmarks share: goals and their verdicts, percentiles, paced audio, peer servers.

A benchmark names each goal in its result's ``ratios`` as ``"<metric> (goal >= 0.9)"`` (or ``<=``);
:func:`finish` prints the verdicts (or the result as one JSON line with ``--json``) and gives the exit
status: 1 when any goal is missed, so a benchmark can fail like a test. ``run_all.py`` reads the same
labels. Free ports and WAV files come from :mod:`harness` (shared with the tests).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

GOAL = re.compile(r"\(goal ([<>]=) ([\d.]+)\)")


def verdicts(ratios: dict[str, float]) -> list[tuple[str, float, str, str]]:
    """(metric, value, goal, verdict) per ratio; verdict ``pass``/``FAIL``, or ``-`` without a goal.

    A missing value (NaN) misses its goal.
    """
    table = []
    for metric, value in ratios.items():
        match = GOAL.search(metric)
        label = GOAL.sub("", metric).strip()
        if match is None:
            table.append((label, value, "-", "-"))
            continue
        op, target = match.group(1), float(match.group(2))
        passed = value >= target if op == ">=" else value <= target
        table.append((label, value, f"{op} {target:g}", "pass" if passed else "FAIL"))
    return table


def finish(result: dict[str, Any], as_json: bool) -> int:
    """Print ``result`` as one JSON line (``as_json``) or its goals' verdicts; 1 if a goal was missed, else 0."""
    rows = verdicts(result["ratios"])
    result["passed"] = all(verdict != "FAIL" for *_, verdict in rows)
    if as_json:
        print(json.dumps(result, default=str))
    else:
        print("Goals")
        for label, value, goal, verdict in rows:
            print(f"  {verdict:<4}  {label}: {value} ({'goal ' + goal if goal != '-' else 'no goal'})")
    return 0 if result["passed"] else 1


def percentile(values: list[float], q: float, nearest_rank: bool = False) -> float:
    """The ``q``-th percentile (0-100) of ``values``, NaN when there are none.

    Linear between ranks by default; ``nearest_rank`` takes an observed value (the smallest with at
    least ``q`` % of the values at or below it), which suits a handful of samples.
    """
    import numpy as np

    if not values:
        return float("nan")
    return float(np.percentile(values, q, method="inverted_cdf" if nearest_rank else "linear"))


def send_paced(
    send: Callable[[bytes], None],
    pcm: bytes,
    started: float,
    frame_bytes: int,
    frame_s: float = 0.1,
    speed: float = 1.0,
) -> None:
    """Send ``pcm`` in frames of ``frame_bytes``, frame i at ``started + i * frame_s / speed`` (``time.monotonic``).

    Each frame leaves when its audio would have been spoken, as a microphone would send it.
    """
    for index, position in enumerate(range(0, len(pcm), frame_bytes)):
        delay = started + index * frame_s / speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(pcm[position : position + frame_bytes])


def http_ready(url: str, key: str | None = None) -> Callable[[], bool]:
    """A check that ``GET url`` answers 200 (and, with ``key``, a JSON body whose ``key`` is true)."""
    import httpx

    def ready() -> bool:
        try:
            response = httpx.get(url, timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and (key is None or bool(response.json().get(key)))

    return ready


def tail(log: Path | None, lines: int = 15) -> str:
    """The last ``lines`` of a log file, if there is one."""
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def peer_server(
    command: list[str],
    ready: Callable[[], bool],
    *,
    name: str,
    log: Path | None = None,
    timeout_s: float = 300.0,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a peer server (its own process group) until ``ready()``; stop it, and all it started, afterwards.

    Args:
        command: the server's command line.
        ready: true once the server answers (e.g. :func:`http_ready`).
        name: what to call it in errors.
        log: where its output goes (appended); discarded if None.
        timeout_s: how long it may take to become ready.

    Raises:
        RuntimeError: it exited, or was not ready within ``timeout_s`` (with the log's tail).
    """
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not ready():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}):\n{tail(log)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready after {timeout_s:.0f} s:\n{tail(log)}")
                time.sleep(0.3)
            yield process
        finally:
            stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM the process's group, SIGKILL it if it lingers, and make sure nothing it started survives."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
