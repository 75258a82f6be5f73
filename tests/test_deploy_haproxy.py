"""deploy/haproxy.cfg is a valid HAProxy config, and replicas behind it lose no request through a rolling restart
and a kill -9 (benchmarks/scale_out.py with real processes and a real HAProxy, shortened)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from harness.launch import REPO

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy absent (apt-get install haproxy)")


def test_config_is_valid_and_health_checks_readyz() -> None:
    config = REPO / "deploy" / "haproxy.cfg"
    checked = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert re.search(r"^\s*option httpchk GET /readyz$", text, re.M)
    assert re.search(r"^\s*retry-on .*\bconn-failure\b.*\bempty-response\b", text, re.M)
    assert " 429" not in re.search(r"^\s*retry-on (.*)$", text, re.M).group(1), "429 must reach the client"
    assert re.search(r"^\s*option redispatch\b", text, re.M)
    assert re.search(r"^\s*option http-buffer-request\b", text, re.M), "without it HAProxy cannot replay a request"
    tunnel = re.search(r"^\s*timeout tunnel (\d+)s", text, re.M)
    assert tunnel and int(tunnel.group(1)) >= 3600, "a live session's WebSocket outlives the default timeouts"


@pytest.mark.slow
def test_rolling_restart_and_kill_lose_no_request(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "scale_out.py"), "--service", "embedding", "--replicas", "2",
         "--clients", "6", "--seconds", "60", "--work-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    print(done.stdout)
    assert "failed requests (not 200 or 429): 0" in done.stdout, done.stdout + done.stderr[-3000:]
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    requests = re.search(r"^requests (\d+)", done.stdout, re.M)
    assert requests and int(requests[1]) > 500, "the load ran through the whole experiment"
    assert done.stdout.count("UP again in HAProxy") == 3, "two restarts and the kill -9 all came back"


@pytest.mark.slow
def test_a_live_session_loses_no_word_through_a_rolling_restart_and_a_kill() -> None:
    """benchmarks/live_failover.py shortened: 66 s of read speech at 2x through two ASR replicas, each restarted
    and then the one holding the session killed; the client resumes and the transcript is as good as untouched."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "live_failover.py"), "--speed", "2", "--rounds", "2", "--json"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["resumes"] >= 2 and figures["resumes_untouched"] == 0, figures
    assert figures["wer_through_restarts"] <= figures["wer_untouched"] + 0.01, figures
