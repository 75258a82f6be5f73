"""Audio on the wire: WAV (whole or with a streaming header), raw PCM, and PyAV-encoded mp3/opus/flac/aac."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator

import av
import numpy as np

STREAMING_SIZE = 0xFFFFFFFF
"""RIFF/data size written in a streamed WAV header: "unknown length", which players and ffmpeg accept."""

MIME_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
}
_CONTAINERS = {
    "mp3": ("mp3", "libmp3lame"),
    "opus": ("ogg", "libopus"),
    "flac": ("flac", "flac"),
    "aac": ("adts", "aac"),
}


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples as signed 16-bit integers (clipped, NaN as silence)."""
    return (np.clip(np.nan_to_num(samples), -1.0, 1.0) * 32767.0).astype("<i2")


def pcm16(samples: np.ndarray) -> bytes:
    """Little-endian signed 16-bit PCM bytes."""
    return to_int16(samples).tobytes()


def wav_header(sample_rate: int, data_bytes: int | None = None) -> bytes:
    """A 44-byte PCM WAV header; ``data_bytes=None`` writes the streaming "unknown length" sizes."""
    data_size = STREAMING_SIZE if data_bytes is None else data_bytes
    riff_size = STREAMING_SIZE if data_bytes is None else 36 + data_bytes
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data" + struct.pack("<I", data_size)
    )  # fmt: skip


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A complete mono 16-bit WAV file."""
    data = pcm16(samples)
    return wav_header(sample_rate, len(data)) + data


class _Sink(io.RawIOBase):
    """Collects what the muxer writes so it can be sent as it comes (not seekable: a stream)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def encode_stream(chunks: Iterable[np.ndarray], sample_rate: int, response_format: str) -> Iterator[bytes]:
    """Encode float32 chunks as they arrive; yields bytes whenever the encoder has some.

    ``wav`` gets a streaming header then PCM, ``pcm`` is headerless 16-bit PCM, and the compressed
    formats go through PyAV (mp3 via LAME, opus in Ogg, flac, aac in ADTS).
    """
    if response_format in ("wav", "pcm"):
        if response_format == "wav":
            yield wav_header(sample_rate)
        for chunk in chunks:
            yield pcm16(chunk)
        return
    container_format, codec = _CONTAINERS[response_format]
    sink = _Sink()
    container = av.open(sink, mode="w", format=container_format)
    try:
        stream = container.add_stream(codec, rate=sample_rate, layout="mono")
        resampler = av.AudioResampler(format=stream.codec_context.format, layout="mono", rate=sample_rate)
        pts = 0
        for chunk in chunks:
            frame = av.AudioFrame.from_ndarray(to_int16(chunk).reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = pts
            pts += frame.samples
            for converted in resampler.resample(frame):
                container.mux(stream.encode(converted))
            if data := sink.take():
                yield data
        for converted in resampler.resample(None):
            container.mux(stream.encode(converted))
        container.mux(stream.encode(None))
    finally:
        container.close()
    if data := sink.take():
        yield data
