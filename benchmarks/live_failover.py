"""A live session through a rolling restart and a kill -9 of the ASR replicas behind HAProxy: are words lost?

    .venv/bin/python benchmarks/live_failover.py [--speed 1] [--rounds 2] [--json]

Two ASR replicas (scripts/services.py, real Whisper base) behind a real HAProxy (deploy/haproxy.cfg, as
benchmarks/scale_out.py runs it). core.py's live client streams LibriVox read speech (the five clips with
pauses, ``--rounds`` times) through HAProxy at ``--speed`` x real time, twice: once untouched, once while
each replica in turn gets SIGTERM (it finishes the utterance it hears, says ``going_away`` and closes with
1012; the client resumes on the other replica) and is started again, and then the replica holding the
session is killed with SIGKILL (the client sees the connection drop and resumes). Prints both runs' word
error rates against the reference and the client's resumptions. Goal: the restarted run's WER within 1 point
of the untouched run's, at least two resumptions, and ``done`` on one timeline. Exit status 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.scale_out import HAProxy, Replica, replicas  # noqa: E402
from benchmarks.shared import send_paced  # noqa: E402
from core import ASRClient  # noqa: E402
from harness.launch import free_port  # noqa: E402
from harness.speech import librivox_clips, pcm16, read_wav, word_error_rate  # noqa: E402

RATE = 16000


def speech(rounds: int) -> tuple[np.ndarray, str]:
    """The five LibriVox clips with 1.5 s pauses, ``rounds`` times; and the joined reference."""
    pause = np.zeros(int(1.5 * RATE), np.float32)
    clips = [(read_wav(path), text) for path, text in librivox_clips()] * rounds
    return np.concatenate([pause, *[part for clip, _ in clips for part in (clip, pause)]]), " ".join(
        t for _, t in clips
    )


def holder(group: list[Replica]) -> Replica | None:
    """The replica with a live session open."""
    for replica in group:
        try:
            if httpx.get(f"{replica.url}/health", timeout=5).json().get("live_sessions"):
                return replica
        except (httpx.HTTPError, ValueError):
            continue
    return None


def session(url: str, pcm: bytes, speed: float) -> tuple[dict, int]:
    """Stream 16 kHz ``pcm`` at ``speed`` x real time through the resumable live client; (done, resumptions)."""
    with ASRClient(url, timeout=600).live(language="en") as live:

        def feed() -> None:
            send_paced(live.send, pcm, time.monotonic(), RATE // 10 * 2, speed=speed)
            live.end()

        threading.Thread(target=feed, daemon=True).start()
        events = list(live)
        return events[-1], live.resumes


def restarts(group: list[Replica], log: list[str], settle: float) -> None:
    """SIGTERM each replica in turn (started again before the next), then SIGKILL the one holding the session."""
    time.sleep(settle)
    for replica in group:
        log.append(f"{time.strftime('%X')} SIGTERM {replica.name} (holding the session: {holder(group) is replica})")
        log.append(f"  {replica.name} gone {replica.terminate():.1f} s later; ready again in {replica.start():.1f} s")
    time.sleep(settle)
    victim = holder(group) or group[0]
    log.append(f"{time.strftime('%X')} SIGKILL {victim.name}")
    victim.kill()
    log.append(f"  {victim.name} ready again in {victim.start():.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed", type=float, default=1.0, help="x real time")
    parser.add_argument("--rounds", type=int, default=2, help="times the five clips are played")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of speech before each disruption")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    audio, reference = speech(args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pcm = pcm16(audio)
        with replicas("asr", 2, work, {"ASR__CPU_THREADS": "1"}) as group:
            proxy = HAProxy(work, free_port(), group)
            try:
                for replica in group:
                    proxy.wait_status(replica.name, "UP")
                url = f"http://127.0.0.1:{proxy.port}"
                calm, calm_resumes = session(url, pcm, args.speed)
                log: list[str] = []
                chaos = threading.Thread(target=restarts, args=(group, log, args.settle), daemon=True)
                chaos.start()
                shaken, resumes = session(url, pcm, args.speed)
                chaos.join(300)
            finally:
                proxy.stop()
    figures = {
        "seconds_of_speech": round(len(audio) / RATE, 1),
        "wer_untouched": word_error_rate(reference, calm.get("text", "")),
        "wer_through_restarts": word_error_rate(reference, shaken.get("text", "")),
        "resumes": resumes,
        "resumes_untouched": calm_resumes,
        "duration_reported": shaken.get("duration"),
        "log": log,
    }
    lost = figures["wer_through_restarts"] - figures["wer_untouched"]
    ok = lost <= 0.01 and resumes >= 2 and calm_resumes == 0 and not chaos.is_alive()
    if args.json:
        print(json.dumps({**figures, "ok": ok}, indent=2))
    else:
        for line in log:
            print(line)
        print(
            f"{figures['seconds_of_speech']} s of speech at {args.speed}x: WER untouched "
            f"{figures['wer_untouched']:.3f}, through the restarts {figures['wer_through_restarts']:.3f} "
            f"({lost * 100:+.1f} points; goal <= +1), resumed {resumes} times (goal >= 2)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
