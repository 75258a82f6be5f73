"""Streaming voice activity detection: Silero VAD (shipped inside faster-whisper) fed window by window.

faster-whisper's own helper scores a whole file at once; a live session needs the same model run on
audio as it arrives, keeping the model's recurrent state and the 64 samples of context between calls.
"""

from __future__ import annotations

import numpy as np

WINDOW = 512
"""Samples per VAD decision at 16 kHz (32 ms)."""
CONTEXT = 64
_STATE_SHAPE = (1, 1, 128)


class StreamingVad:
    """Speech probability per 32 ms window of 16 kHz audio, fed in pieces of any length."""

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Score the whole windows that ``samples`` completes; returns one probability per window."""
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        count = len(audio) // WINDOW
        self._pending = audio[count * WINDOW :]
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        windows = audio[: count * WINDOW].reshape(count, WINDOW)
        contexts = np.empty((count, CONTEXT), dtype=np.float32)
        contexts[0] = self._context
        contexts[1:] = windows[:-1, -CONTEXT:]
        self._context = windows[-1, -CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        output, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        return np.asarray(output, dtype=np.float32).reshape(-1)
