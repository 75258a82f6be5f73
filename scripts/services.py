"""Start, stop and inspect the suite's services under gunicorn (used by the scripts/*.sh wrappers).

    python scripts/services.py start [NAME ...]   # all existing services when no name is given
    python scripts/services.py stop [NAME ...]
    python scripts/services.py status [NAME ...]

Each service runs as one gunicorn master (pid file, the URL it serves on and its log in ``$SUITE_RUN_DIR``,
default ``run/``).
``<NAME>_PORT`` (e.g. ``EMBEDDING_PORT``) overrides the configured port.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


from common.services import SERVICES, Service  # noqa: E402


def run_dir() -> Path:
    path = Path(os.environ.get("SUITE_RUN_DIR", REPO / "run"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def service_env(service: Service) -> dict[str, str]:
    env = dict(os.environ)
    if env.get(service.port_env):
        env[f"{service.env_prefix}__SERVER__PORT"] = env[service.port_env]
    env["SUITE_SERVICE"] = service.name
    # glibc gives each request thread its own malloc arena; native model code (onnxruntime, LiteRT,
    # CTranslate2) allocating from 16 threads then fragments memory and RSS creeps up under load.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    # OpenMP's worker threads (CTranslate2's, via libgomp) spin while they wait for work. On a box that
    # other services and live sessions share, spinning threads take the cores the working ones need:
    # a live Whisper decode took 10x the CPU (4-8 s instead of 0.4 s) under load until they sleep instead.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def load_settings(service: Service, env: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return service.settings_class().load()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def read_pid(service: Service) -> int | None:
    pidfile = run_dir() / f"{service.name}.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return None
    except PermissionError:
        pass
    return pid


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host if host != "0.0.0.0" else "127.0.0.1", port)) == 0


def probe(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}").get("status", "")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}").get("status", "")
        except (OSError, ValueError):  # a body that does not come in time (a busy machine) or is not JSON
            return exc.code, ""
    except (OSError, ValueError):
        return 0, "down"


def base_url(settings) -> str:
    host = settings.server.host
    return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{settings.server.port}"


def url_file(service: Service) -> Path:
    """Where ``start`` records the URL a service was started on (removed by ``stop``)."""
    return run_dir() / f"{service.name}.url"


def running_url(service: Service, settings) -> str:
    """The URL a running service serves on: what it was started with, not what this call's env asks for."""
    try:
        return url_file(service).read_text().strip() or base_url(settings)
    except OSError:
        return base_url(settings)


def log_tail(service: Service, lines: int = 40) -> str:
    try:
        return "\n".join((run_dir() / f"{service.name}.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(service: Service, wait: float) -> bool:
    env = service_env(service)
    settings = load_settings(service, env)
    url = base_url(settings)
    pid = read_pid(service)
    if pid is not None:
        running = running_url(service, settings)
        note = f" (not at {url}, which you asked for)" if running != url else ""
        print(f"{service.name}: already running (pid {pid}) at {running}{note}")
        return True
    if port_in_use(settings.server.host, settings.server.port):
        print(
            f"{service.name}: port {settings.server.port} is already in use by another program; "
            f"stop it or set {service.port_env}",
            file=sys.stderr,
        )
        return False
    log_path = run_dir() / f"{service.name}.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [
        str(gunicorn),
        "-c",
        str(REPO / "scripts" / "gunicorn.conf.py"),
        "--pid",
        str(run_dir() / f"{service.name}.pid"),
        service.app,
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url_file(service).write_text(url + "\n")
    print(f"{service.name}: starting (pid {process.pid}), log {log_path}")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(
                f"{service.name}: exited with {process.returncode} while starting; log tail:\n{log_tail(service)}",
                file=sys.stderr,
            )
            return False
        status, detail = probe(f"{url}/readyz")
        if status == 200:
            print(f"{service.name}: ready at {url}")
            return True
        if detail == "failed":
            print(f"{service.name}: model failed to load; log tail:\n{log_tail(service)}", file=sys.stderr)
            stop(service)
            return False
        time.sleep(0.5)
    print(f"{service.name}: not ready after {wait:.0f} s; log tail:\n{log_tail(service)}", file=sys.stderr)
    return False


def stop(service: Service) -> bool:
    pid = read_pid(service)
    if pid is None:
        print(f"{service.name}: not running")
        return True
    # gunicorn gives in-flight requests graceful_timeout seconds; kill only after that
    timeout = load_settings(service, service_env(service)).server.graceful_timeout + 15.0
    os.kill(pid, signal.SIGTERM)  # graceful: in-flight requests finish
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        print(f"{service.name}: still running after {timeout:.0f} s; killing", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    (run_dir() / f"{service.name}.pid").unlink(missing_ok=True)
    url_file(service).unlink(missing_ok=True)
    print(f"{service.name}: stopped")
    return True


def rss_mib(pid: int) -> float:
    total = 0
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def status(service: Service) -> bool:
    settings = load_settings(service, service_env(service))
    pid = read_pid(service)
    url = running_url(service, settings) if pid else base_url(settings)
    code, detail = probe(f"{url}/readyz")
    state = "ready" if code == 200 else (detail or "down")
    memory = f"{rss_mib(pid):.0f} MiB" if pid else "-"
    port = url.rsplit(":", 1)[1]
    print(f"{service.name:<10} {state:<9} pid={pid or '-':<8} port={port:<6} rss={memory:<9} {url}")
    return code == 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("names", nargs="*", help=f"services (default: all of {', '.join(SERVICES)})")
    parser.add_argument(
        "--wait",
        type=float,
        default=float(os.environ.get("SUITE_START_TIMEOUT", 300)),
        help="seconds to wait for /readyz when starting",
    )
    args = parser.parse_args()
    unknown = set(args.names) - SERVICES.keys()
    if unknown:
        parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")
    services = [SERVICES[n] for n in (args.names or SERVICES)]
    if args.action == "start":
        ok = all([start(s, args.wait) for s in services])
        if ok:
            print("\nServices:")
            for s in services:
                print(f"  {s.name:<10} {running_url(s, load_settings(s, service_env(s)))}")
            console = SERVICES.get("console")
            if console in services:
                url = running_url(console, load_settings(console, service_env(console)))
                print(f"\nVoice console: open {url}/ in a browser")
        return 0 if ok else 1
    if args.action == "stop":
        return 0 if all([stop(s) for s in services]) else 1
    return 0 if all([status(s) for s in services]) else 3


if __name__ == "__main__":
    sys.exit(main())
