"""Live transcription latency and accuracy, ours and WhisperLiveKit's, side by side in one run.

    .venv/bin/python benchmarks/live_bench.py [--no-peer] [--load-seconds 60] [--no-chinese]

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
import numpy as np  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from harness.launch import launch  # noqa: E402
from harness.speech import error_count, librivox_clips, read_wav, wav_bytes  # noqa: E402

RATE = 16000
FRAME = RATE // 10
PAUSE_S = 1.5
ENGLISH = [
    "The weather is lovely today, so let's take a walk in the park.",
    "Please send me the report before Friday afternoon.",
    "Artificial intelligence is changing the way we live and work.",
    "Could you turn off the lights in the kitchen when you leave?",
    "The train to the city leaves from the second platform.",
    "I would like a cup of coffee with a little milk and no sugar.",
    "Remember to water the plants while I am away on holiday.",
    "The meeting has been moved to the large room on the third floor.",
    "She opened the window and listened to the birds singing outside.",
    "How long does it take to drive from here to the airport?",
    "Our team finished the project a few weeks ahead of schedule.",
    "The library closes early on Sundays, so plan your visit carefully.",
    "He forgot his umbrella and came home completely soaked.",
    "Can you recommend a good restaurant near the river?",
    "The children built a small castle out of sand and shells.",
    "Turn left at the bakery and the museum is straight ahead.",
]
CHINESE = [
    "今天天气很好，我们一起去公园散步吧。",
    "人工智能正在改变我们的生活方式。",
    "请在星期五下午之前把报告发给我。",
    "明天早上我们在学校门口见面。",
    "这家餐厅的菜很好吃，价格也不贵。",
    "请帮我把窗户关上，外面太冷了。",
    "我想买一张去北京的火车票。",
    "会议改到下个星期举行。",
    "他每天晚上都会读半个小时的书。",
    "图书馆周末开放的时间比较短。",
    "你能告诉我去火车站怎么走吗？",
    "这个问题我们需要再讨论一下。",
    "孩子们在海边用沙子堆了一座城堡。",
    "我的手机没电了，可以借你的充电器吗？",
    "天气预报说明天会下大雨。",
    "谢谢你的帮助，我们下次再见。",
]
STYLES = ("style1", "style2", "style3")
"""Our TTS's voices, taken in turn."""


@dataclass
class Utterance:
    """Where one utterance's speech starts and ends in the stream (seconds), and what was said."""

    start: float
    end: float
    reference: str


@dataclass
class Stream:
    """Audio to send and its utterances."""

    samples: np.ndarray
    utterances: list[Utterance]
    language: str
    clips: list[tuple[np.ndarray, str]]
    name: str

    @property
    def reference(self) -> str:
        """What was said: the utterances' references joined (with no space between Chinese ones)."""
        return ("" if self.language == "zh" else " ").join(u.reference for u in self.utterances)

    @property
    def pcm(self) -> bytes:
        return (np.clip(self.samples, -1, 1) * 32767).astype("<i2").tobytes()


@dataclass
class Timeline:
    """What one system answered, with arrival times in seconds since the first audio frame."""

    partials: list[tuple[float, float, str]] = field(default_factory=list)
    """(arrival, utterance start in the stream or -1 when unknown, text)."""
    finals: list[tuple[float, str]] = field(default_factory=list)
    """(arrival, text) per final text as it became final."""


def speech_span(clip: np.ndarray) -> tuple[float, float]:
    """First and last speech window of a clip (Silero VAD, as the service runs it)."""
    from asr_service.vad import WINDOW, StreamingVad

    probabilities = StreamingVad().feed(clip)
    speech = np.flatnonzero(probabilities >= 0.5)
    return speech[0] * WINDOW / RATE, (speech[-1] + 1) * WINDOW / RATE


def build_stream(clips: list[tuple[np.ndarray, str]], language: str, name: str) -> Stream:
    pause = np.zeros(int(PAUSE_S * RATE), dtype=np.float32)
    pieces: list[np.ndarray] = [pause]
    utterances = []
    offset = PAUSE_S
    for clip, reference in clips:
        start, end = speech_span(clip)
        utterances.append(Utterance(offset + start, offset + end, reference))
        pieces += [clip, pause]
        offset += len(clip) / RATE + PAUSE_S
    return Stream(np.concatenate(pieces), utterances, language, clips, name)


def english_stream() -> Stream:
    """The LibriVox clips: real speech."""
    return build_stream([(read_wav(path), text) for path, text in librivox_clips()], "en", "LibriVox")


def tts_streams(languages: list[str]) -> list[Stream]:
    """:data:`ENGLISH` and :data:`CHINESE` spoken by our TTS (in-process), voices taken in turn."""
    from scipy.signal import resample_poly

    from tts_service.engine import TtsEngine
    from tts_service.settings import TtsSettings

    engine = TtsEngine(TtsSettings.load())
    engine.start(background=False)
    streams = []
    for language in languages:
        clips = []
        for index, sentence in enumerate(ENGLISH if language == "en" else CHINESE):
            speech = engine.synthesize(sentence, style=STYLES[index % len(STYLES)])
            clips.append((resample_poly(speech.samples, RATE, speech.sample_rate).astype(np.float32), sentence))
        streams.append(build_stream(clips, language, f"TTS {language}"))
    engine.close()
    return streams


def send_paced(send: Callable[[bytes], None], pcm: bytes, started: float) -> None:
    """Send 100 ms frames, each when its audio would have been spoken."""
    step = FRAME * 2
    for index, position in enumerate(range(0, len(pcm), step)):
        delay = started + index * 0.1 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(pcm[position : position + step])


def run_ours(url: str, stream: Stream) -> Timeline:
    """Stream to ``/asr/live`` and record partials and finals."""
    timeline = Timeline()
    with connect(f"{url}?language={stream.language}", max_size=None) as ws:
        json.loads(ws.recv(timeout=60))
        started = time.monotonic()

        def feed() -> None:
            send_paced(ws.send, stream.pcm, started)
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


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, q))


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
    checks = []
    for language in languages:
        mine = pooled(ours, streams, language)
        assert mine is not None
        report(f"ours ({language})", mine)
        names = [s.name for s in streams if s.language == language]
        errors = sum(file_errors[name][0] for name in names)
        length = sum(file_errors[name][1] for name in names)
        print(f"  {'/asr (' + language + ')':<16} error rate {errors / length:.3f} ({errors} of {length})")
        unit = "CER" if language == "zh" else "WER"
        checks.append((f"final {unit} within 1 point of /asr ({language})", mine.error_rate <= errors / length + 0.01))
        theirs = pooled(peers, streams, language)
        if theirs is not None:
            report(f"WLK ({language})", theirs)
            ratio = percentile(theirs.final_latency, 50) / percentile(mine.final_latency, 50)
            print(f"  WLK / ours, speech end -> final p50 ({language}): {ratio:.1f}x")
            checks.append((f"ours >= 4x faster than WLK to the final ({language})", ratio >= 4))
            checks.append((f"error rate no worse than WLK ({language})", mine.error_rate <= theirs.error_rate + 0.005))

    print("Goals (latencies: English, all streams)")
    english = pooled(ours, streams, "en")
    assert english is not None
    checks[:0] = [
        ("first partial <= 1.0 s after speech starts (max)", max(english.first_partial, default=99) <= 1.0),
        ("a new partial at least every 1.0 s (p95)", percentile(english.partial_gaps, 95) <= 1.0),
        ("speech end -> final p50 <= 0.6 s", percentile(english.final_latency, 50) <= 0.6),
        ("speech end -> final p95 <= 1.0 s", percentile(english.final_latency, 95) <= 1.0),
        (f"{args.sessions} sessions: speech end -> final p95 <= 2 s", load_p95 <= 2.0),
    ]
    for name, passed in checks:
        print(f"  {'pass' if passed else 'FAIL'}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
