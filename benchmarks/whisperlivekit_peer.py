"""WhisperLiveKit as a live-transcription peer for benchmarks/live_bench.py.

    .venv/bin/python benchmarks/whisperlivekit_peer.py [--language en] [--speed 1.0]

WhisperLiveKit (https://github.com/QuentinFuxa/WhisperLiveKit) runs in its own venv at
``~/.cache/ai-service-suite/whisperlivekit-venv`` (it needs torch, FastAPI and librosa, which the
suite does not), installed from PyPI only: the local CPU build ``torch==2.13.0`` first, then
whisperlivekit with ``--no-deps`` and exactly what its faster-whisper + LocalAgreement + ONNX Silero
VAD path imports (torchaudio, which it declares, is never imported on that path).

The server gets the same model as our service (the assembled Whisper base in our model cache;
its compute type "auto" resolves to int8_float32 on this CPU, as our "int8" does; beam 5 like ours),
``--backend-policy localagreement``, raw s16le input (``--pcm-input``) and a local warm-up clip (its
default downloads one). It never sets CTranslate2's thread count, so CTranslate2 reads
``OMP_NUM_THREADS`` (checked by counting threads: intra-op threads follow it; unset, it took 2 on
this 2-core machine, its docs say 4); we set it to the thread count our service uses. Hubs are off
(``HF_HUB_OFFLINE=1``): the model is a local directory, the Silero VAD the ONNX file in the wheel.

Protocol (whisperlivekit 0.2.26, ``/asr``): after the handshake the server sends
``{"type": "config", ...}``, then snapshots ``{"status", "lines": [{"speaker", "text", "start",
"end"}], "buffer_transcription", ...}`` where ``lines`` hold the committed text (LocalAgreement never
takes it back; speaker -2 marks silence) and ``buffer_transcription`` the tentative tail. An empty
binary frame ends the input; ``{"type": "ready_to_stop"}`` says every result has been sent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.shared import http_ready, peer_server, send_paced  # noqa: E402
from harness.launch import free_port  # noqa: E402

VENV = Path.home() / ".cache" / "ai-service-suite" / "whisperlivekit-venv"
WLK_VERSION = "0.2.26"
TORCH = "torch==2.13.0"
# What whisperlivekit's faster-whisper / LocalAgreement / ONNX-VAD path imports (its own pins kept).
DEPENDENCIES = [
    "fastapi>=0.141.1",
    "starlette>=1.3.1",
    "uvicorn",
    "websockets",
    "python-multipart>=0.0.31",
    "faster-whisper>=1.2.0",
    "huggingface-hub>=0.25.0",
    "onnxruntime",
    "librosa",
    "soundfile",
    "tiktoken",
    "tqdm",
]
# The inference engine is pinned to the versions our own venv runs, so both sides run the same code.
SAME_AS_OURS = ("faster-whisper", "ctranslate2", "onnxruntime", "numpy")
IMPORT_CHECK = "import whisperlivekit.core, whisperlivekit.audio_processor, faster_whisper, onnxruntime, librosa"
LIBRIVOX = REPO / "tests" / "data" / "librivox"
WARM_UP_CLIP = LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0880.wav"
STARTUP_TIMEOUT_S = 300.0


def venv_python() -> Path:
    """Path of the python inside the WhisperLiveKit venv (it may not exist yet)."""
    return VENV / "bin" / "python"


def _pinned_dependencies() -> list[str]:
    """DEPENDENCIES plus ``name==version`` for each SAME_AS_OURS package installed here."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in SAME_AS_OURS:
        with contextlib.suppress(PackageNotFoundError):
            pins.append(f"{name}=={version(name)}")
    return [*DEPENDENCIES, *pins]


def _marker() -> Path:
    """Records what was installed; a change (e.g. our faster-whisper upgraded) reinstalls."""
    return VENV / ".installed-by-suite"


def ensure_venv(quiet: bool = True) -> Path | None:
    """Create the WhisperLiveKit venv once and return its python, or None (reason printed).

    Args:
        quiet: pass ``-q`` to pip.
    """
    python = venv_python()
    wanted = "\n".join([f"whisperlivekit=={WLK_VERSION}", TORCH, *_pinned_dependencies()]) + "\n"
    if python.exists() and _marker().exists() and _marker().read_text() == wanted:
        return python
    base = getattr(sys, "_base_executable", None) or sys.executable
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *(["-q"] if quiet else [])]
    steps = [
        [base, "-m", "venv", str(VENV)],
        # torch first: the local CPU build; a bare 'torch' (asked for by whisperlivekit) is a multi-GB CUDA build.
        [*pip, TORCH],
        [*pip, "--no-deps", f"whisperlivekit=={WLK_VERSION}"],
        [*pip, *_pinned_dependencies()],
        [str(python), "-c", IMPORT_CHECK],
    ]
    print(f"Installing WhisperLiveKit {WLK_VERSION} into {VENV} (once; about 2 min, 1.8 GB) ...", flush=True)
    started = time.monotonic()
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, cwd=tempfile.gettempdir())
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
            print(f"WhisperLiveKit unavailable: `{shlex.join(step)}` failed:\n{tail}", flush=True)
            return None
    _marker().write_text(wanted)
    print(f"WhisperLiveKit installed in {time.monotonic() - started:.0f} s", flush=True)
    return python


def assembled_base_model() -> Path:
    """Our assembled Whisper base (faster-whisper format); assembles it if needed."""
    from asr_service.backends.whisper import prepare_bundled_base

    return prepare_bundled_base()


def server_command(python: Path, port: int, language: str | None, model_dir: Path, warm_up: Path) -> list[str]:
    """The whisperlivekit-server command line the benchmark runs."""
    return [
        str(python.parent / "whisperlivekit-server"),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--backend", "faster-whisper",
        "--backend-policy", "localagreement",
        "--model_dir", str(model_dir),
        "--lan", language or "auto",
        "--pcm-input",
        "--warmup-file", str(warm_up),
    ]  # fmt: skip


@contextlib.contextmanager
def serve(
    language: str | None, port: int | None = None, threads: int = 2, log_path: Path | None = None
) -> Iterator[str]:
    """Run whisperlivekit-server on 127.0.0.1 for the duration; yield its WebSocket URL.

    Args:
        language: Whisper language code ("en", "zh"), or None to let Whisper detect it.
        port: port to listen on; a free one if None.
        threads: CTranslate2 intra-op threads (through OMP_NUM_THREADS).
        log_path: where to write the server's output (default: a temporary file, removed).

    Raises:
        RuntimeError: the venv cannot be installed, or the server exits or never becomes ready.
    """
    python = ensure_venv()
    if python is None:
        raise RuntimeError("WhisperLiveKit is not installed (reason printed above)")
    port = port or free_port()
    model_dir = assembled_base_model()
    with tempfile.TemporaryDirectory(prefix="wlk-peer-") as scratch:
        warm_up = Path(scratch) / "warm-up.wav"
        shutil.copyfile(WARM_UP_CLIP, warm_up)
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(threads),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("VIRTUAL_ENV", None)
        with peer_server(
            server_command(python, port, language, model_dir, warm_up),
            http_ready(f"http://127.0.0.1:{port}/health", key="ready"),
            name="whisperlivekit-server",
            log=log_path or Path(scratch) / "server.log",
            timeout_s=STARTUP_TIMEOUT_S,
            cwd=scratch,
            env=env,
        ):
            yield f"ws://127.0.0.1:{port}/asr"


def stream(
    url: str,
    pcm: bytes,
    sample_rate: int = 16000,
    chunk_s: float = 0.1,
    speed: float = 1.0,
    tail_timeout_s: float = 60.0,
) -> list[tuple[float, dict]]:
    """Send s16le mono PCM paced at ``speed`` x real time; collect every message WLK sends.

    Frame i is sent at i * chunk_s / speed (when its audio starts, as live_bench does for ours).
    Returns (arrival, message) pairs, arrival in seconds since the first audio byte was sent
    (the ``config`` message, sent at the handshake, is read first, at ~0). The list ends with
    ``{"type": "ready_to_stop"}`` unless WLK closed the socket or ``tail_timeout_s`` passed after
    the last audio frame without it.

    Raises:
        ValueError: a sample rate other than 16 kHz (WLK's --pcm-input takes 16 kHz only).
    """
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    if sample_rate != 16000:
        raise ValueError("WhisperLiveKit --pcm-input expects 16 kHz s16le mono")
    chunk = max(2, int(sample_rate * chunk_s) * 2)
    messages: list[tuple[float, dict]] = []
    with connect(url, max_size=None, open_timeout=30) as ws:
        start = time.monotonic()
        failed: list[BaseException] = []

        def send() -> None:
            try:
                send_paced(ws.send, pcm, start, chunk, chunk_s, speed)
                ws.send(b"")  # an empty binary frame is WLK's end of input
            except ConnectionClosed as error:
                failed.append(error)

        sender = threading.Thread(target=send, name="wlk-sender", daemon=True)
        sender.start()
        deadline = start + -(-len(pcm) // chunk) * chunk_s / speed + tail_timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                raw = ws.recv(timeout=remaining)
            except (TimeoutError, ConnectionClosed):
                break
            arrival = time.monotonic() - start
            message = json.loads(raw)
            messages.append((arrival, message))
            if message.get("type") == "ready_to_stop":
                break
        ws.close()
        sender.join(timeout=5)
    return messages


def _cjk(char: str) -> bool:
    return "\u2e80" <= char <= "\u9fff" or "\uf900" <= char <= "\uffef"


def committed_text(message: dict) -> str:
    """All committed (final) text in a WLK snapshot so far; "" for other messages.

    Lines are split at silences; they are joined with a space, or with nothing between Chinese text.
    """
    joined = ""
    for line in message.get("lines") or []:
        text = (line.get("text") or "").strip()
        if line.get("speaker") == -2 or not text:
            continue
        joined += text if not joined or _cjk(joined[-1]) or _cjk(text[0]) else " " + text
    return joined


def partial_text(message: dict) -> str:
    """The tentative tail in a WLK snapshot (may still change); "" for other messages."""
    return (message.get("buffer_transcription") or "").strip()


def read_pcm(path: Path) -> bytes:
    """Frames of a 16 kHz mono s16le WAV file."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (16000, 1, 2):
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit")
        return wav.readframes(wav.getnframes())


def main() -> None:
    """Stream LibriVox clips (1.5 s of silence before each and after the last); print the timeline."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clips", type=Path, nargs="+", default=[LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0870.wav"]
    )
    parser.add_argument("--language", default="en")
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    pause = bytes(int(32000 * 1.5))
    pcm = pause
    spans = []
    for clip in args.clips:
        speech = read_pcm(clip)
        spans.append((len(pcm) / 32000, (len(pcm) + len(speech)) / 32000))
        pcm += speech + pause
        print(f"{clip.name}: audio {spans[-1][0]:.2f}-{spans[-1][1]:.2f} s (the clip's edges included)")
    server_log = Path(tempfile.gettempdir()) / "whisperlivekit-peer-server.log"
    started = time.monotonic()
    with serve(args.language, log_path=server_log) as url:
        print(f"server ready in {time.monotonic() - started:.1f} s at {url} (log: {server_log})")
        messages = stream(url, pcm, speed=args.speed)
    committed = partial = ""
    for arrival, message in messages:
        text, buffer = committed_text(message), partial_text(message)
        if message.get("type"):
            print(f"{arrival:7.2f} s  {message['type']}")
        elif text != committed or buffer != partial:
            ends = [
                f"{arrival - end:+.2f} s vs end of clip {i + 1}" for i, (_, end) in enumerate(spans) if end <= arrival
            ]
            where = ends[-1] if ends else "before end of clip 1"
            print(f"{arrival:7.2f} s ({where})  committed={text[len(committed) :]!r}  partial={buffer!r}")
        committed, partial = text, buffer
    print(f"{len(messages)} messages (WLK repeats its snapshot every ~0.05 s; changes shown, committed as new text)")


if __name__ == "__main__":
    main()
