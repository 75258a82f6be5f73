"""The container's entrypoint: run one of the suite's services under gunicorn in the foreground.

    entrypoint.py embedding|asr|llm|tts|console     (or the name in $SUITE_SERVICE)

The environment is the one ``scripts/services.py start`` gives a service (``<NAME>_PORT``, allocator and
OpenMP settings, PYTHONPATH), and the command is the same gunicorn command; only here gunicorn replaces
this process (PID 1's child signals, SIGTERM drain and exit code go straight to the container runtime)
instead of running in the background with a pid file. In a container the service listens on every
interface unless ``<NAME>__SERVER__HOST`` says otherwise: 127.0.0.1 would be unreachable from outside it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "scripts")]

import services as launcher  # noqa: E402  (scripts/services.py)

from common.services import SERVICES  # noqa: E402


def command(name: str) -> tuple[list[str], dict[str, str]]:
    """gunicorn's argv and environment for service ``name``.

    Raises:
        SystemExit: ``name`` is not one of the suite's services.
    """
    if name not in SERVICES:
        raise SystemExit(f"usage: entrypoint.py {{{'|'.join(SERVICES)}}} (or set SUITE_SERVICE); got {name!r}")
    service = SERVICES[name]
    env = launcher.service_env(service)
    env.setdefault(f"{service.env_prefix}__SERVER__HOST", "0.0.0.0")
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    return [gunicorn, "-c", str(REPO / "scripts" / "gunicorn.conf.py"), service.app], env


def main() -> None:
    """Replace this process with the chosen service's gunicorn."""
    name = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SUITE_SERVICE", "")
    argv, env = command(name)
    os.chdir(REPO)
    print(f"{name}: exec {' '.join(argv)}", flush=True)
    os.execve(argv[0], argv, env)


if __name__ == "__main__":
    main()
