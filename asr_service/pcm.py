"""Raw PCM frames from live clients to float32 at 16 kHz."""

from __future__ import annotations

import av
import numpy as np

from common.errors import BadRequest

RATE = 16000


class PcmConverter:
    """Raw signed 16-bit little-endian mono PCM at any rate -> float32 at 16 kHz (stateful resampling)."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._resampler = None if sample_rate == RATE else av.AudioResampler(format="flt", layout="mono", rate=RATE)

    def convert(self, pcm: bytes) -> np.ndarray:
        """Convert one frame; raises BadRequest on an odd byte count."""
        if len(pcm) % 2:
            raise BadRequest(f"binary frame of {len(pcm)} bytes is not whole 16-bit samples", code="odd_frame")
        ints = np.frombuffer(pcm, dtype="<i2")
        if self._resampler is None:
            return ints.astype(np.float32) / 32768.0
        frame = av.AudioFrame.from_ndarray(ints.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        return self._resample(frame)

    def flush(self) -> np.ndarray:
        """The resampler's buffered tail."""
        return self._resample(None) if self._resampler is not None else np.zeros(0, dtype=np.float32)

    def _resample(self, frame: av.AudioFrame | None) -> np.ndarray:
        assert self._resampler is not None
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, dtype=np.float32)
