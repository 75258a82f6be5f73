"""Decode any uploaded audio (wav, mp3, flac, ogg/opus, m4a/aac, webm, ...) to float32 mono; resample.

Decoding runs in memory through PyAV (FFmpeg): no temp files. Duration is bounded while
decoding, so a tiny file that expands to hours of audio (a "zip bomb") stops at the limit.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import av
import numpy as np

from common.errors import BadRequest

log = logging.getLogger("suite.audio")


class AudioError(BadRequest):
    """The upload is not usable audio (400)."""

    default_code = "invalid_audio"


@dataclass(frozen=True)
class Audio:
    """Decoded audio: float32 mono samples in [-1, 1]."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


def decode_audio(data: bytes, *, sample_rate: int = 16000, max_seconds: float = 900.0, param: str = "file") -> Audio:
    """Decode and resample an audio file's first audio stream to mono ``sample_rate``.

    Args:
        data: the uploaded file's bytes.
        sample_rate: output rate in Hz.
        max_seconds: longest accepted audio.
        param: request field named in errors.

    Raises:
        AudioError: empty, not audio, no audio stream, undecodable, zero length, or too long.
    """
    if not data:
        raise AudioError("the audio file is empty", param=param, code="empty_audio")
    limit = int(max_seconds * sample_rate)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("the file has no audio stream", param=param, code="no_audio_stream")
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                declared = float(stream.duration * stream.time_base)
                if declared > max_seconds:
                    raise _too_long(declared, max_seconds, param)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            try:
                for frame in container.decode(stream):
                    for out in resampler.resample(frame):
                        total += _append(chunks, out)
                    if total > limit:
                        raise _too_long(total / sample_rate, max_seconds, param)
            except av.error.FFmpegError as exc:
                if not total:
                    raise
                # a truncated or partly garbled file: keep what decoded, as players do
                log.info("audio decoding stopped early after %.1f s: %s", total / sample_rate, exc)
            for out in resampler.resample(None):
                total += _append(chunks, out)
    except AudioError:
        raise
    except (av.error.FFmpegError, IndexError, ValueError, EOFError) as exc:
        # IndexError: PyAV on containers whose audio stream is unusable (e.g. video-only mp4)
        raise AudioError(f"cannot decode the audio file: {exc}", param=param) from None
    if total == 0:
        raise AudioError("the audio has no samples (zero length)", param=param, code="empty_audio")
    if total > limit:
        raise _too_long(total / sample_rate, max_seconds, param)
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    return Audio(np.clip(samples, -1.0, 1.0), sample_rate)


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling of float32 mono audio (e.g. Piper's 22050 Hz to the output's 24000 Hz)."""
    if source_rate == target_rate:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly  # only the services that resample load scipy

    divisor = np.gcd(source_rate, target_rate)
    return resample_poly(samples, target_rate // divisor, source_rate // divisor).astype(np.float32)


def _append(chunks: list[np.ndarray], frame: av.AudioFrame) -> int:
    array = frame.to_ndarray().reshape(-1)
    chunks.append(array)
    return len(array)


def _too_long(seconds: float, max_seconds: float, param: str) -> AudioError:
    return AudioError(
        f"the audio is {seconds:.0f} s long; the limit is {max_seconds:.0f} s", param=param, code="audio_too_long"
    )
