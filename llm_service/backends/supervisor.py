"""A supervised child server process: started on a free loopback port, watched, restarted when it dies.

The child never outlives the process that started it. Linux delivers SIGKILL to it when its parent
*thread* ends (``PR_SET_PDEATHSIG``), so it is started from the supervisor's own thread, which lives
as long as the supervisor: a SIGTERM'd, crashed or SIGKILL'd service (or gunicorn worker) takes its
child along. A gunicorn worker whose master is SIGKILL'd notices within a second and exits too.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

log = logging.getLogger("suite.llm.child")

PR_SET_PDEATHSIG = 1
MAX_BACKOFF_S = 30.0


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks the kernel to SIGKILL the child when its parent thread ends (Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


@dataclass
class ChildState:
    """What :class:`Supervisor` reports about its child (for /health)."""

    state: str
    """``starting``, ``ready``, ``restarting``, ``failed`` or ``stopped``."""
    pid: int | None
    url: str | None
    restarts: int
    last_exit: str | None
    """Why the previous child ended (exit code and its last log line), if one did."""


class Supervisor:
    """Runs ``command(port)`` as a child, waits for ``GET <url><health_path>`` to answer 200, restarts it on exit.

    Args:
        name: for logs and messages.
        command: the child's argv for a given port.
        env: the child's environment (default: ours).
        health_path: the child's readiness route.
        startup_timeout_s: longest wait for a (re)started child to become ready.
    """

    def __init__(
        self,
        name: str,
        command: Callable[[int], list[str]],
        env: dict[str, str] | None = None,
        health_path: str = "/health",
        startup_timeout_s: float = 300,
    ) -> None:
        self.name = name
        self._command = command
        self._env = env
        self._health_path = health_path
        self._startup_timeout_s = startup_timeout_s
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._changed = threading.Condition(self._lock)
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        self._state = "starting"
        self._restarts = 0
        self._last_exit: str | None = None
        self._log_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._thread: threading.Thread | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        """Start the child and block until it is ready.

        Raises:
            RuntimeError: the first child exited or did not become ready in time (with its last log lines).
        """
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-supervisor", daemon=True)
        self._thread.start()
        with self._changed:
            self._changed.wait_for(lambda: self._state != "starting")
            if self._state != "ready":
                tail = "\n".join(self._log_tail)
                raise RuntimeError(f"{self.name} did not start: {self._last_exit}\n{tail}".rstrip())

    @property
    def url(self) -> str | None:
        """Base URL of the ready child, else None."""
        with self._lock:
            return self._url if self._state == "ready" else None

    @property
    def ready(self) -> bool:
        """The child is up and answered its health route."""
        return self.url is not None

    def status(self) -> ChildState:
        """The child's current state."""
        with self._lock:
            pid = self._process.pid if self._process is not None else None
            return ChildState(self._state, pid, self._url, self._restarts, self._last_exit)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the child (SIGTERM, then SIGKILL) and the supervisor thread."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None:
            _terminate(process, timeout)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _set(self, state: str, url: str | None = None) -> None:
        with self._changed:
            self._state = state
            self._url = url
            self._changed.notify_all()

    def _run(self) -> None:
        try:
            self._supervise()
        except Exception as exc:  # never leave start() or /health waiting on a dead thread
            log.exception("%s supervisor failed", self.name)
            with self._changed:
                self._last_exit = f"{self.name} supervisor failed: {exc}"
            self._set("failed")

    def _supervise(self) -> None:
        first, failures = True, 0
        while not self._stopping.is_set():
            try:
                process, url = self._spawn()
            except OSError as exc:
                process, url, reason = None, "", f"{self.name} could not be started: {exc}"
            became_ready = process is not None and self._await_ready(process, url)
            if process is not None:
                if became_ready:
                    first, failures = False, 0
                    self._set("ready", url)
                    log.info("%s ready at %s (pid %d)", self.name, url, process.pid)
                    process.wait()
                    reason = self._exit_reason(process, became_ready)
                elif process.poll() is None:  # no answer in time (or stopping)
                    _terminate(process, 5)
                    reason = f"{self.name} was not ready within {self._startup_timeout_s:.0f} s"
                else:
                    reason = self._exit_reason(process, became_ready)
            if self._stopping.is_set():
                break
            with self._changed:
                self._last_exit = reason
                if first:  # the very first child failed: loading fails, no retry loop
                    self._state = "failed"
                    self._changed.notify_all()
                    return
                self._restarts += 1
            self._set("restarting")
            failures += 0 if became_ready else 1
            backoff = min(MAX_BACKOFF_S, 0.5 * 2**failures) if failures else 0.0
            log.error("%s; restarting%s", reason, f" in {backoff:.1f} s" if backoff else "")
            if self._stopping.wait(backoff):
                break
        self._set("stopped")

    def _spawn(self) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        command = self._command(port)
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self._env,
            preexec_fn=_die_with_parent_hook(),  # only prctl runs between fork and exec
        )
        with self._lock:
            self._process = process
        self._reader = threading.Thread(target=self._read_log, args=(process,), name=f"{self.name}-log", daemon=True)
        self._reader.start()
        log.info("%s starting (pid %d): %s", self.name, process.pid, " ".join(command))
        return process, f"http://127.0.0.1:{port}"

    def _read_log(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self._log_tail.append(line)
                log.debug("%s: %s", self.name, line)

    def _await_ready(self, process: subprocess.Popen[bytes], url: str) -> bool:
        deadline = time.monotonic() + self._startup_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    if client.get(url + self._health_path).status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                if self._stopping.wait(0.1):
                    return False
        return False

    def _exit_reason(self, process: subprocess.Popen[bytes], was_ready: bool) -> str:
        if self._reader is not None:
            self._reader.join(2.0)  # its last words, e.g. why the model did not load
        code = process.returncode or 0
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        last = self._log_tail[-1] if self._log_tail else ""
        when = "" if was_ready else " while starting"
        return f"{self.name} {how}{when}" + (f" (last log line: {last})" if last and code > 0 else "")


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
