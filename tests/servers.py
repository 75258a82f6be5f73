"""The README's curl examples, run against a started service."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from harness.launch import REPO, RunningService


def readme_curls(default_port: int) -> list[str]:
    """The README's curl examples (```bash blocks) for the service on ``default_port``."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks if b.lstrip().startswith("curl") and f":{default_port}" in b]


def run_readme_curls(service: RunningService, default_port: int, cwd: Path = REPO) -> int:
    """Run each README curl for the service against ``service`` in ``cwd``; fail on any error.

    A command must print something, or write the file its ``--output`` names.
    """
    port = service.url.rsplit(":", 1)[1]
    commands = readme_curls(default_port)
    for command in commands:
        command = command.replace(f":{default_port}", f":{port}")
        output = re.search(r"--output\s+(\S+)", command)
        if output:
            (cwd / output.group(1)).unlink(missing_ok=True)
        done = subprocess.run(
            ["bash", "-c", f"{command} --fail-with-body --silent --show-error"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        if output:
            assert (cwd / output.group(1)).stat().st_size > 1000, command
        else:
            assert done.stdout.strip(), command
    return len(commands)
