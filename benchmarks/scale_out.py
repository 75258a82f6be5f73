"""Replicas of a service behind a real HAProxy (deploy/haproxy.cfg) under load, through a rolling restart and kill -9.

    .venv/bin/python benchmarks/scale_out.py --service embedding --replicas 3 --clients 8 --seconds 60

Starts ``--replicas`` copies of the service the way users do (scripts/services.py, each on its own port and run
directory), HAProxy in front of them with the project's config (only the bind and server lines replaced), and
``--clients`` clients sending load.py's realistic request mix through HAProxy for ``--seconds``. Meanwhile:
a rolling restart (SIGTERM one replica, start it again, wait until HAProxy sees it ready, next) and then a
kill -9 of one replica's whole process group (restarted afterwards). Prints request counts by status,
latency, HAProxy's retries and redispatches, and how each replica's /readyz behaved after SIGTERM.
Goal: 0 failed requests beyond 429. Exit status 1 otherwise. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import io
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from benchmarks.load import MIXES, Request, hammer  # noqa: E402
from common.services import SERVICES  # noqa: E402
from harness.launch import free_port  # noqa: E402

HAPROXY_CFG = REPO / "deploy" / "haproxy.cfg"
SERVICES_PY = REPO / "scripts" / "services.py"


def wait_gone(pid: int, timeout: float) -> None:
    """Wait until process ``pid`` no longer exists (reaped, so a pid file naming it reads as stale)."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} still there {timeout:.0f} s after it was told to stop")
        time.sleep(0.05)


@dataclass
class Replica:
    """One replica: a gunicorn master started by scripts/services.py in its own run directory."""

    service: str
    name: str
    port: int
    run_dir: Path
    env: dict[str, str]
    events: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _services(self, action: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(SERVICES_PY), "--wait", str(timeout), action, self.service]
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout + 120)

    def start(self) -> float:
        """Start and wait for /readyz; seconds it took."""
        started = time.monotonic()
        done = self._services("start")
        if done.returncode != 0:
            raise RuntimeError(f"{self.name} did not start:\n{done.stdout}\n{done.stderr}")
        return time.monotonic() - started

    def pid(self) -> int:
        return int((self.run_dir / f"{self.service}.pid").read_text())

    def stop(self) -> float:
        """SIGTERM through scripts/services.py (waits for the exit); seconds it took."""
        started = time.monotonic()
        done = self._services("stop")
        if done.returncode != 0:
            raise RuntimeError(f"{self.name} did not stop:\n{done.stdout}\n{done.stderr}")
        return time.monotonic() - started

    def terminate(self, timeout: float = 120) -> float:
        """SIGTERM to the gunicorn master (what Kubernetes and podman stop send); seconds until it is gone.
        What /readyz answers from then on is recorded in :attr:`events`."""
        pid, started = self.pid(), time.monotonic()
        os.kill(pid, signal.SIGTERM)
        watcher = self.watch_readyz(30)
        wait_gone(pid, timeout)
        gone = time.monotonic() - started
        watcher.join(31)
        return gone

    def kill(self) -> None:
        """kill -9 of the master and its workers (the process group services.py started); returns once gone."""
        pid = self.pid()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        wait_gone(pid, 30)

    def watch_readyz(self, seconds: float) -> threading.Thread:
        """Record what /readyz answers (status or refusal) every 50 ms for ``seconds``, as runs of one answer."""

        def watch() -> None:
            deadline = time.monotonic() + seconds
            runs: list[list] = []
            while time.monotonic() < deadline:
                try:
                    answer = str(httpx.get(f"{self.url}/readyz", timeout=1).status_code)
                except httpx.ConnectError:
                    answer = "refused"
                except httpx.HTTPError as exc:
                    answer = type(exc).__name__
                if runs and runs[-1][0] == answer:
                    runs[-1][1] += 1
                else:
                    runs.append([answer, 1])
                if answer == "refused":
                    break
                time.sleep(0.05)
            self.events.append("after SIGTERM /readyz: " + ", ".join(f"{a} x{n}" for a, n in runs))

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        return thread


class HAProxy:
    """haproxy in the foreground with deploy/haproxy.cfg, its bind and servers replaced, and a stats socket."""

    def __init__(self, work: Path, port: int, replicas: list[Replica]) -> None:
        self.port = port
        self.socket = work / "haproxy.sock"
        text = HAPROXY_CFG.read_text()
        text = re.sub(r"^(\s*)bind \S+", rf"\g<1>bind 127.0.0.1:{port}", text, count=1, flags=re.M)
        text = re.sub(r"^\s*server .*\n", "", text, flags=re.M)
        servers = "".join(f"    server {r.name} 127.0.0.1:{r.port}\n" for r in replicas)
        text = text.rstrip("\n") + "\n" + servers
        text = text.replace("global\n", f"global\n    stats socket {self.socket} mode 600 level admin\n", 1)
        self.config = work / "haproxy.cfg"
        self.config.write_text(text)
        self.log = open(work / "haproxy.log", "wb")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(self.config)], stdout=self.log, stderr=subprocess.STDOUT
        )

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> list[dict[str, str]]:
        """``show stat`` rows of the backend and its servers."""
        rows = csv.DictReader(io.StringIO(self.command("show stat").lstrip("# ")))
        return [row for row in rows if row["pxname"] in {"replicas", "suite"}]

    def wait_status(self, server: str, status: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if any(r["svname"] == server and r["status"].startswith(status) for r in self.stats()):
                    return
            time.sleep(0.2)
        raise TimeoutError(f"HAProxy never saw {server} {status}")

    def wait_idle(self, server: str, timeout: float = 120) -> None:
        """Wait until ``server`` has no session left (its in-flight requests answered)."""
        deadline = time.monotonic() + timeout
        while any(r["svname"] == server and int(r["scur"] or 0) > 0 for r in self.stats()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{server} still has sessions after {timeout:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@contextlib.contextmanager
def replicas(service: str, count: int, work: Path, env: dict[str, str]) -> Iterator[list[Replica]]:
    """``count`` started replicas; all stopped (or killed) on exit."""
    started: list[Replica] = []
    try:
        for index in range(1, count + 1):
            port, run_dir = free_port(), work / f"r{index}"
            run_dir.mkdir(parents=True, exist_ok=True)
            full_env = {**os.environ, **env, "SUITE_RUN_DIR": str(run_dir), SERVICES[service].port_env: str(port)}
            replica = Replica(service, f"r{index}", port, run_dir, full_env)
            replica.events.append(f"started in {replica.start():.1f} s")
            started.append(replica)
        yield started
    finally:
        for replica in started:
            with contextlib.suppress(Exception):
                replica.stop()


def send_load(url: str, mix: list[Request], clients: int, seconds: float, result: dict) -> None:
    """load.py's clients (random requests from ``mix``, Retry-After honoured on 429); failures kept with their time."""
    failures: list[str] = []
    latencies, statuses, elapsed = hammer(url, mix, clients, seconds, failures)
    result.update(latencies=latencies, statuses=statuses, failures=failures, elapsed=elapsed)


def chaos(proxy: HAProxy, group: list[Replica], settle: float, log: list[str], drain: bool) -> None:
    """A rolling restart of every replica (each drained in HAProxy first if ``drain``), then a kill -9 of the
    first one and its restart."""
    time.sleep(settle)
    for replica in group:
        if drain:  # what a Kubernetes preStop hook gives: the balancer lets go of the replica before SIGTERM
            proxy.command(f"set server replicas/{replica.name} state maint")
            proxy.wait_idle(replica.name)
            log.append(f"{time.strftime('%X')} {replica.name} drained in HAProxy (maint, no session left)")
        log.append(f"{time.strftime('%X')} SIGTERM {replica.name}")
        stopped = replica.terminate()
        replica.events.append(f"stopped {stopped:.1f} s after SIGTERM")
        replica.events.append(f"back and ready in {replica.start():.1f} s")
        if drain:
            proxy.command(f"set server replicas/{replica.name} state ready")
        proxy.wait_status(replica.name, "UP")
        log.append(f"{time.strftime('%X')} {replica.name} UP again in HAProxy")
    victim = group[0]
    log.append(f"{time.strftime('%X')} kill -9 {victim.name}")
    victim.kill()
    proxy.wait_status(victim.name, "DOWN")
    log.append(f"{time.strftime('%X')} HAProxy marked {victim.name} DOWN")
    victim.events.append(f"after kill -9: restarted and ready in {victim.start():.1f} s")
    proxy.wait_status(victim.name, "UP")
    log.append(f"{time.strftime('%X')} {victim.name} UP again in HAProxy")


def run(args: argparse.Namespace, work: Path) -> dict:
    """The whole experiment; returns its figures."""
    env = {f"{args.service.upper()}__CPU_THREADS": str(args.cpu_threads)}
    with replicas(args.service, args.replicas, work, env) as group:
        proxy = HAProxy(work, free_port(), group)
        try:
            for replica in group:
                proxy.wait_status(replica.name, "UP")
            url = f"http://127.0.0.1:{proxy.port}"
            log: list[str] = []
            result: dict = {}
            load = threading.Thread(
                target=send_load, args=(url, MIXES[args.service](), args.clients, args.seconds, result), daemon=True
            )
            load_end = time.monotonic() + args.seconds
            load.start()
            chaos_error = None
            try:
                chaos(proxy, group, args.settle, log, args.drain)
            except Exception as exc:  # report it with the figures rather than lose them
                chaos_error = f"{type(exc).__name__}: {exc}"
            chaos_done = time.monotonic()
            load.join(args.seconds + 300)
            rows = proxy.stats()
            stats = {row["svname"]: row for row in rows if row["pxname"] == "replicas"}
            frontend = next((row for row in rows if row["svname"] == "FRONTEND"), {})
        finally:
            proxy.stop()
    return {
        **result,
        "log": log,
        "chaos_error": chaos_error,
        "chaos_late": max(0.0, chaos_done - load_end),
        "stats": stats,
        "frontend": frontend,
        "replicas": {r.name: r.events for r in group},
    }


def report(args: argparse.Namespace, figures: dict) -> int:
    """Print the figures; 0 when nothing but 200 and 429 came back and the chaos ran to its end."""
    statuses: collections.Counter[str] = figures.get("statuses", collections.Counter())
    latencies = figures.get("latencies", [])
    failed = sum(n for status, n in statuses.items() if status not in {"200", "429"})
    how = "drained in HAProxy, then SIGTERM" if args.drain else "SIGTERM without draining"
    print(f"{args.service}: {args.replicas} replicas behind HAProxy, {args.clients} clients x {args.seconds:.0f} s")
    print(f"rolling restart: {how}")
    for line in figures["log"]:
        print(f"  {line}")
    for name, events in figures["replicas"].items():
        print(f"  {name}: " + "; ".join(events))
    if latencies:
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
        print(
            f"requests {len(latencies)}  {len(latencies) / figures['elapsed']:.1f}/s  "
            f"p50 {q[49] * 1000:.0f} ms  p95 {q[94] * 1000:.0f} ms  p99 {q[98] * 1000:.0f} ms  "
            f"max {max(latencies) * 1000:.0f} ms"
        )
    print("status counts:", dict(statuses))
    for failure in figures.get("failures", [])[:20]:
        print(f"  failed: {failure}")
    backend = figures["stats"].get("BACKEND", {})
    counters = ("wretr", "wredis", "econ", "eresp", "srv_abrt", "cli_abrt", "hrsp_5xx")
    print("HAProxy backend: " + "  ".join(f"{name} {backend.get(name)}" for name in counters))
    frontend = figures.get("frontend", {})
    print("HAProxy frontend: " + "  ".join(f"{name} {frontend.get(name)}" for name in ("ereq", "dreq", "hrsp_5xx")))
    if figures["chaos_error"]:
        print(f"the restarts did not complete: {figures['chaos_error']}")
    if figures["chaos_late"]:
        print(f"the restarts ended {figures['chaos_late']:.0f} s after the load: raise --seconds")
    print(f"failed requests (not 200 or 429): {failed}")
    return 1 if failed or figures["chaos_error"] or figures["chaos_late"] or not latencies else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", default="embedding", choices=sorted(MIXES))
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60, help="load duration; the restarts must fit in it")
    parser.add_argument("--settle", type=float, default=5, help="seconds of load before the first restart")
    parser.add_argument(
        "--drain",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="before each SIGTERM set the replica to maint in HAProxy and wait for its sessions to end",
    )
    parser.add_argument("--cpu-threads", type=int, default=1, help="model threads per replica (2 cores here)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "run" / "scale_out")
    args = parser.parse_args()
    if not 2 <= args.replicas <= 4 or not 1 <= args.clients <= 64 or not 10 <= args.seconds <= 600:
        parser.error("replicas must be 2-4, clients 1-64, seconds 10-600")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    return report(args, run(args, args.work_dir))


if __name__ == "__main__":
    sys.exit(main())
