"""infinity (michaelfeil/infinity) as the embedding benchmark's peer: its own venv, offline, ONNX engine.

Nothing of it is installed in the suite's venv. :func:`ensure_venv` creates
``$INFINITY_VENV`` (default ``~/.cache/ai-service-suite/infinity-venv``) once with pip
(torch 2.13.0 CPU first, then ``infinity-emb[server,optimum]``); :func:`export_model` exports the
bundled all-MiniLM-L6-v2 to ONNX once with optimum in that venv; :func:`serve` runs
``infinity_emb v2 --engine optimum --pooling-method mean`` on loopback with the hub offline.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmarks.shared import http_ready, peer_server

INFINITY_VERSION = "0.0.78"
HOME = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ai-service-suite"
VENV = Path(os.environ.get("INFINITY_VENV") or HOME / "infinity-venv")
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "HF_HOME": str(HOME / "infinity-hf"),
}
OFFLINE_ENV["INFINITY_ANONYMOUS_USAGE_STATS"] = "0"

EXPORT = """
import sys
from optimum.onnxruntime import ORTModelForFeatureExtraction
from transformers import AutoTokenizer
source, target = sys.argv[1], sys.argv[2]
ORTModelForFeatureExtraction.from_pretrained(source, export=True).save_pretrained(target)
AutoTokenizer.from_pretrained(source).save_pretrained(target)
"""


def ensure_venv(log: Path) -> tuple[Path | None, str]:
    """infinity's python, creating its venv if missing; (None, why) when it cannot be had."""
    python = VENV / "bin" / "python"
    ready = VENV / ".infinity-ready"
    if ready.exists() and python.exists():
        return python, f"infinity-emb {INFINITY_VERSION} in {VENV}"
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "torch==2.13.0"],
        [str(python), "-m", "pip", "install", "--quiet", f"infinity-emb[server,optimum]=={INFINITY_VERSION}"],
    ]
    print(f"creating infinity's venv in {VENV} (once; a few minutes)...", file=sys.stderr, flush=True)
    with log.open("a") as out:
        for step in steps:
            try:
                done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return None, f"could not create infinity's venv ({exc})"
            if done.returncode != 0:
                return None, f"could not create infinity's venv: {' '.join(step[-2:])} failed (see {log})"
    ready.write_text(INFINITY_VERSION)
    return python, f"infinity-emb {INFINITY_VERSION} in {VENV} (created now)"


def export_model(python: Path, source: Path, log: Path) -> Path:
    """all-MiniLM-L6-v2 exported to ONNX by optimum, once, beside the venv.

    Raises:
        RuntimeError: the export failed.
    """
    target = HOME / "infinity-models" / "all-MiniLM-L6-v2"
    if (target / "model.onnx").exists() and (target / ".exported").exists():
        return target
    with log.open("a") as out:
        done = subprocess.run(
            [str(python), "-c", EXPORT, str(source), str(target)],
            env={**os.environ, **OFFLINE_ENV},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    if done.returncode != 0:
        raise RuntimeError(f"optimum could not export {source} to ONNX (see {log})")
    (target / ".exported").write_text("ok\n")
    return target


@contextlib.contextmanager
def serve(python: Path, model_dir: Path, name: str, port: int, log: Path) -> Iterator[str]:
    """Run infinity's server on ``127.0.0.1:port`` serving ``model_dir`` as ``name``; yields its URL.

    Raises:
        RuntimeError: it exited, or did not answer ``/health`` within 5 minutes.
    """
    command = [
        str(python.parent / "infinity_emb"),
        "v2",
        "--model-id",
        ".",  # run inside the model dir: infinity 0.0.78 finds ONNX files by a path relative to it
        "--served-model-name",
        name,
        "--engine",
        "optimum",
        "--pooling-method",
        "mean",
        "--device",
        "cpu",
        "--batch-size",
        "32",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--url-prefix",
        "/v1",
    ]
    with peer_server(
        command,
        http_ready(f"http://127.0.0.1:{port}/health"),
        name="infinity",
        log=log,
        cwd=model_dir,
        env={**os.environ, **OFFLINE_ENV},
    ):
        yield f"http://127.0.0.1:{port}"
