"""Live transcription latency and accuracy, ours and WhisperLiveKit's, side by side in one run.

    .venv/bin/python benchmarks/live_bench.py [--no-peer] [--load-seconds 60] [--no-chinese] [--json]

Speech, each utterance after a pause, is streamed paced at real time in 100 ms frames to (a) the ASR
service's ``/asr/live`` under gunicorn and (b) WhisperLiveKit (same Whisper base model, int8, 2 threads; see
benchmarks/whisperlivekit_peer.py). Speech start and end of every utterance are known from the audio
(Silero VAD on each clip alone). Printed per system: first partial after speech starts, the gap
between partials while speech goes on (p95), speech end -> final text (p50, p95), WER/CER; then four
sessions at once for ``--load-seconds`` (final latency p95, and whether it grows); then the goals.

Three streams: the five LibriVox clips (real speech, 71 words), 16 English sentences and 16 Chinese
sentences made by our own TTS (176 words, 215 characters). Error rates are counted over each language's
streams together, and per stream; on the LibriVox clips alone one word is 1.4 points.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from benchmarks.live_streams import FRAME, RATE, Stream, Utterance, build_stream, english_stream, tts_streams  # noqa: E402
from benchmarks.shared import finish, percentile, send_paced  # noqa: E402
from harness.launch import launch  # noqa: E402
from harness.speech import error_count, wav_bytes  # noqa: E402


@dataclass
class Timeline:
    """What one system answered, with arrival times in seconds since the first audio frame."""

    partials: list[tuple[float, float, str]] = field(default_factory=list)
    """(arrival, utterance start in the stream or -1 when unknown, text)."""
    finals: list[tuple[float, str]] = field(default_factory=list)
    """(arrival, text) per final text as it became final."""


def run_ours(url: str, stream: Stream) -> Timeline:
    """Stream to ``/asr/live`` and record partials and finals."""
    timeline = Timeline()
    with connect(f"{url}?language={stream.language}", max_size=None) as ws:
        json.loads(ws.recv(timeout=60))
        started = time.monotonic()

        def feed() -> None:
            send_paced(ws.send, stream.pcm, started, FRAME * 2)  # 100 ms frames
            ws.send(json.dumps({"event": "end"}))

        threading.Thread(target=feed, daemon=True).start()
        for message in ws:
            now = time.monotonic() - started
            event = json.loads(message)
            if "partial_text" in event:
                timeline.partials.append((now, event["start"], event["partial_text"]))
            elif event.get("final"):
                timeline.finals.append((now, event["text"]))
            elif event.get("event") == "done" or "error" in event:
                break
    return timeline


def run_peer(url: str, stream: Stream) -> Timeline:
    """Stream to WhisperLiveKit and turn its messages into the same timeline.

    Its Chinese comes in Whisper's Traditional characters; it is converted to Simplified (as our service
    does) before it is scored, so that only what was heard counts.
    """
    from opencc import OpenCC

    from benchmarks import whisperlivekit_peer as peer

    simplified = OpenCC("t2s").convert if stream.language == "zh" else str
    timeline = Timeline()
    committed = ""
    tentative = ""
    for arrival, message in peer.stream(url, stream.pcm):
        text = peer.committed_text(message)
        buffer = peer.partial_text(message)
        if text != committed and len(text) > len(committed):
            timeline.finals.append((arrival, simplified(text[len(committed) :].strip())))
            committed = text
        if buffer and buffer != tentative:
            timeline.partials.append((arrival, -1.0, simplified(buffer)))
        tentative = buffer
    return timeline


@dataclass
class Scores:
    first_partial: list[float]
    partial_gaps: list[float]
    final_latency: list[float]
    errors: int
    reference_length: int
    """Words, or characters for Chinese."""

    @property
    def error_rate(self) -> float:
        return self.errors / max(self.reference_length, 1)

    def __add__(self, other: Scores) -> Scores:
        return Scores(
            self.first_partial + other.first_partial,
            self.partial_gaps + other.partial_gaps,
            self.final_latency + other.final_latency,
            self.errors + other.errors,
            self.reference_length + other.reference_length,
        )


def score(stream: Stream, timeline: Timeline) -> Scores:
    """Latencies per utterance and the error rate of all final text."""
    chinese = stream.language == "zh"
    joined = ("" if chinese else " ").join(text for _, text in timeline.finals)
    first_partial, gaps, finals = [], [], []
    for utterance in stream.utterances:
        during = [a for a, _, _ in timeline.partials if utterance.start <= a <= utterance.end + 0.3]
        if during:
            first_partial.append(during[0] - utterance.start)
            marks = [utterance.start, *during]
            gaps += [b - a for a, b in itertools.pairwise(marks)]
        done = _covered_at(stream, timeline, utterance)
        if done is not None:
            finals.append(done - utterance.end)
    return Scores(first_partial, gaps, finals, *error_count(stream.reference, joined, chinese=chinese))


def _covered_at(stream: Stream, timeline: Timeline, utterance: Utterance) -> float | None:
    """When the final text first covered this utterance: enough final text for every utterance up to it."""
    chinese = stream.language == "zh"
    index = stream.utterances.index(utterance)
    needed = sum(len(u.reference if chinese else u.reference.split()) for u in stream.utterances[: index + 1])
    have = 0
    for arrival, text in timeline.finals:
        have += len(text) if chinese else len(text.split())
        if arrival >= utterance.end - 0.5 and have >= 0.85 * needed:
            return arrival
    return None


def report(name: str, scores: Scores) -> None:
    p = percentile
    latest = max(scores.first_partial, default=float("nan"))
    print(
        f"  {name:<16} first partial p50 {p(scores.first_partial, 50):5.2f} s  max {latest:5.2f} s"
        f" | partial gap p95 {p(scores.partial_gaps, 95):5.2f} s"
        f" | speech end -> final p50 {p(scores.final_latency, 50):5.2f} s  p95 {p(scores.final_latency, 95):5.2f} s"
        f" | error rate {scores.error_rate:.3f} ({scores.errors} of {scores.reference_length})"
    )


def file_route_errors(http_url: str, stream: Stream) -> tuple[int, int]:
    """Errors of ``/asr`` on the same stream (one file), and the reference length."""
    response = httpx.post(
        f"{http_url}/asr",
        files={"file": ("stream.wav", wav_bytes(stream.samples))},
        data={"language": stream.language},
        timeout=600,
    )
    response.raise_for_status()
    return error_count(stream.reference, response.json()["text"], chinese=stream.language == "zh")


def load_run(run: Callable[[Stream], Timeline], stream: Stream, sessions: int, seconds: float) -> list[list[float]]:
    """``sessions`` streams at once, each about ``seconds`` long (the clips repeated), started 0.37 s apart.

    Returns each session's speech end -> final latencies, in the order of its utterances.
    """
    repeats = max(1, round(seconds / (len(stream.samples) / RATE)))
    long = build_stream(stream.clips * repeats, stream.language, stream.name)
    results: list[list[float]] = [[] for _ in range(sessions)]

    def one(index: int) -> None:
        time.sleep(index * 0.37)
        results[index] = score(long, run(long)).final_latency

    threads = [threading.Thread(target=one, args=(i,)) for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def report_load(name: str, results: list[list[float]]) -> float:
    """Print p50/p95 of all finals and the lag trend (last third minus first third); returns p95."""
    every = [v for latencies in results for v in latencies]
    thirds = [v for latencies in results for v in latencies[: max(1, len(latencies) // 3)]]
    lasts = [v for latencies in results for v in latencies[-max(1, len(latencies) // 3) :]]
    growth = statistics.mean(lasts) - statistics.mean(thirds) if thirds and lasts else float("nan")
    print(
        f"  {name:<16} {len(results)} sessions, {len(every)} finals:"
        f" speech end -> final p50 {percentile(every, 50):5.2f} s  p95 {percentile(every, 95):5.2f} s"
        f" | last third minus first third {growth:+.2f} s"
    )
    return percentile(every, 95)


def pooled(scores: dict[str, Scores], streams: list[Stream], language: str) -> Scores | None:
    """One language's scores over all its streams."""
    parts = [scores[s.name] for s in streams if s.language == language and s.name in scores]
    return sum(parts[1:], parts[0]) if parts else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-peer", action="store_true", help="skip WhisperLiveKit")
    parser.add_argument("--no-chinese", action="store_true", help="English only")
    parser.add_argument("--load-seconds", type=float, default=60.0, help="length of each concurrent stream")
    parser.add_argument("--sessions", type=int, default=4, help="concurrent streams in the load run")
    parser.add_argument("--json", action="store_true", help="end with one JSON object (for run_all.py)")
    args = parser.parse_args(argv)

    languages = ["en"] + ([] if args.no_chinese else ["zh"])
    streams = [english_stream(), *tts_streams(languages)]
    ours: dict[str, Scores] = {}
    peers: dict[str, Scores] = {}
    file_errors: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        with launch("asr", Path(scratch)) as service:
            live_url = service.url.replace("http://", "ws://") + "/asr/live"
            print("One session, speech paced at real time")
            for stream in streams:
                ours[stream.name] = score(stream, run_ours(live_url, stream))
                report(f"ours ({stream.name})", ours[stream.name])
                errors, length = file_errors[stream.name] = file_route_errors(service.url, stream)
                print(f"  {'/asr (' + stream.name + ')':<16} error rate {errors / length:.3f} ({errors} of {length})")
            print(f"{args.sessions} sessions at once")
            load_p95 = report_load(
                "ours (en)", load_run(lambda s: run_ours(live_url, s), streams[0], args.sessions, args.load_seconds)
            )
        if not args.no_peer:
            from benchmarks import whisperlivekit_peer as peer

            if peer.ensure_venv() is None:
                print("  WhisperLiveKit: not installed (see above); peer rows skipped")
            else:
                print("WhisperLiveKit (same model, int8, 2 threads, LocalAgreement)")
                for stream in streams:
                    with peer.serve(stream.language) as url:
                        peers[stream.name] = score(stream, run_peer(url, stream))
                    report(f"WLK ({stream.name})", peers[stream.name])
                with peer.serve("en") as url:
                    report_load(
                        "WLK (en)", load_run(lambda s: run_peer(url, s), streams[0], args.sessions, args.load_seconds)
                    )

    print("Each language, all its streams")
    english = pooled(ours, streams, "en")
    assert english is not None
    goals = {
        "English: first partial after speech starts, max s (goal <= 1.0)": max(english.first_partial, default=99),
        "English: gap between partials p95, s (goal <= 1.0)": percentile(english.partial_gaps, 95),
        "English: speech end -> final p50, s (goal <= 0.6)": percentile(english.final_latency, 50),
        "English: speech end -> final p95, s (goal <= 1.0)": percentile(english.final_latency, 95),
        f"{args.sessions} sessions: speech end -> final p95, s (goal <= 2)": load_p95,
    }
    for language in languages:
        mine = pooled(ours, streams, language)
        assert mine is not None
        report(f"ours ({language})", mine)
        names = [s.name for s in streams if s.language == language]
        errors = sum(file_errors[name][0] for name in names)
        length = sum(file_errors[name][1] for name in names)
        print(f"  {'/asr (' + language + ')':<16} error rate {errors / length:.3f} ({errors} of {length})")
        unit = "CER" if language == "zh" else "WER"
        goals[f"{language}: final {unit} minus /asr's, points (goal <= 1)"] = (mine.error_rate - errors / length) * 100
        theirs = pooled(peers, streams, language)
        if theirs is not None:
            report(f"WLK ({language})", theirs)
            ratio = percentile(theirs.final_latency, 50) / percentile(mine.final_latency, 50)
            goals[f"{language}: WLK / ours, speech end -> final p50 (goal >= 4)"] = ratio
            goals[f"{language}: our error rate minus WLK's, points (goal <= 0.5)"] = (
                mine.error_rate - theirs.error_rate
            ) * 100
    result = {
        "benchmark": "live",
        "compared_with": "WhisperLiveKit 0.2.26 (same Whisper base, int8, 2 threads); /asr on the same audio",
        "cores": os.cpu_count(),
        "streams": {name: vars(scores) | {"error_rate": scores.error_rate} for name, scores in ours.items()},
        "peer_streams": {name: vars(scores) | {"error_rate": scores.error_rate} for name, scores in peers.items()},
        "ratios": {name: round(value, 3) for name, value in goals.items()},
    }
    return finish(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
