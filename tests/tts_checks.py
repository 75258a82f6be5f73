"""Checks on synthesised audio shared by the TTS tests."""

from __future__ import annotations

import io
import wave

import numpy as np


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """A 16-bit mono WAV as (float32 samples, rate); asserts the format."""
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32) / 32768
        return samples, wav.getframerate()


def assert_speech(samples: np.ndarray, rate: int, seconds: tuple[float, float]) -> None:
    """Plausible speech: duration in range, not silent, finite, not clipped."""
    duration = samples.size / rate
    assert seconds[0] <= duration <= seconds[1], f"{duration:.2f} s not in {seconds}"
    assert np.all(np.isfinite(samples))
    assert float(np.sqrt(np.mean(samples**2))) > 0.02, "silent"
    assert float(np.mean(np.abs(samples) >= 0.999)) < 0.001, "clipped"
