"""Real speech, WAV checks and format conversions made with PyAV (FFmpeg), for the ASR and TTS tests and benchmarks."""

from __future__ import annotations

import io
import re
import wave
from pathlib import Path

import av
import numpy as np

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
LIBRIVOX = DATA / "librivox"


def librivox_clips() -> list[tuple[Path, str]]:
    """(wav path, reference transcript) for the five LibriVox clips."""
    references = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        match = re.match(r"<s> (.*) </s> \((.*)\)", line.strip())
        if match:
            references[match.group(2)] = match.group(1)
    return [(LIBRIVOX / f"{name}.wav", text) for name, text in sorted(references.items())]


def read_wav(path: Path) -> np.ndarray:
    """16-bit mono WAV file -> float32 samples."""
    return parse_wav(path.read_bytes())[0]


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """A 16-bit mono WAV as (float32 samples, rate); asserts the format."""
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32) / 32768
        return samples, wav.getframerate()


def assert_speech(samples: np.ndarray, rate: int, seconds: tuple[float, float]) -> None:
    """Plausible synthesised speech: duration in range, not silent, finite, not clipped."""
    duration = samples.size / rate
    assert seconds[0] <= duration <= seconds[1], f"{duration:.2f} s not in {seconds}"
    assert np.all(np.isfinite(samples))
    assert float(np.sqrt(np.mean(samples**2))) > 0.02, "silent"
    assert float(np.mean(np.abs(samples) >= 0.999)) < 0.001, "clipped"


def pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as signed 16-bit little-endian PCM (clipped)."""
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def wav_bytes(samples: np.ndarray, rate: int = 16000, channels: int = 1) -> bytes:
    """16-bit PCM WAV; ``samples`` is (n,) or (n, channels)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm16(samples))
    return buffer.getvalue()


def long_speech(gap_seconds: float = 1.5) -> tuple[np.ndarray, str]:
    """All five clips joined with silence (~30 s, several VAD segments) and the joined reference."""
    pieces: list[np.ndarray] = []
    texts: list[str] = []
    silence = np.zeros(int(gap_seconds * 16000), dtype=np.float32)
    for path, text in librivox_clips():
        pieces += [read_wav(path), silence]
        texts.append(text)
    return np.concatenate(pieces), " ".join(texts)


def encode(samples: np.ndarray, container: str, codec: str, rate: int = 16000, layout: str = "mono") -> bytes:
    """Encode float samples (16 kHz mono) into ``container``/``codec`` at ``rate`` with ``layout``."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype("<i2")[None, :], format="s16", layout="mono")
        frame.sample_rate = 16000
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=rate)
        for resampled in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two token lists."""
    row = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1]


def _words(text: str) -> list[str]:
    text = text.lower().replace("-", " ").replace("mr.", "mister")
    return re.sub(r"[^\w\s']", " ", text).split()


def _characters(text: str) -> list[str]:
    return [c for c in text if c.isalnum()]


def error_count(reference: str, hypothesis: str, *, chinese: bool = False) -> tuple[int, int]:
    """(edit distance, reference length) in words, or in characters for Chinese; as the two rates count."""
    split = _characters if chinese else _words
    ref = split(reference)
    return edit_distance(ref, split(hypothesis)), len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance / reference length, after lower-casing and dropping punctuation."""
    errors, length = error_count(reference, hypothesis)
    return errors / max(length, 1)


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Character-level edit distance / reference length, ignoring punctuation and spaces (for Chinese)."""
    errors, length = error_count(reference, hypothesis, chinese=True)
    return errors / max(length, 1)


def silent_flac(hours: float, rate: int = 8000) -> bytes:
    """Hours of digital silence as a small FLAC (~70 KB for 10 h: maximal frames of constant zeros)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        stream.codec_context.options = {"compression_level": "0", "frame_size": "65535"}
        minute = np.zeros((1, rate * 60), np.int16)
        for index in range(int(hours * 60)):
            frame = av.AudioFrame.from_ndarray(minute, format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = index * minute.shape[1]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


LONG_ENGLISH = [
    "The difference in the rainbow depends considerably upon the size of the drops, and the width of the "
    "coloured band increases as the size of the drops increases.",
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow.",
]
"""Sentences our TTS says in one breath; the first says a phrase twice (what Whisper's loop check took for a loop)."""
LONG_CHINESE = [
    "今天天气很好，我们一起去公园散步吧，顺便买一些新鲜的水果和蔬菜回家做晚饭。",
    "人工智能正在改变我们的生活方式和工作方式，也让很多过去需要人工完成的事情变得更加简单。",
]


def trimmed(samples: np.ndarray, keep_s: float = 0.08) -> np.ndarray:
    """Cut leading and trailing quiet down to ``keep_s``, so joined pieces leave no pause between them."""
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    keep = int(keep_s * 16000)
    return samples[max(0, loud[0] - keep) : loud[-1] + keep]
