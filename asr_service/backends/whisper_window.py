"""Short encoder windows for short pieces of a file, as the live path has for utterances.

faster-whisper pads every window to Whisper's 30 s before encoding; for a 5 s clip that is most of the
decode (the encoder costs about 1 s for 30 s of window on one core, 0.15 s for 10 s). Around the decode of
a piece shorter than the window, :func:`encoder_window` tells :class:`WindowedEncoder` (the model
faster-whisper calls) how long the piece is; it cuts the padded features to the piece plus at least 1.5 s
of padding, in 5 s steps (:func:`~asr_service.backends.whisper_utterance.window_seconds`). Only padding
is cut: the piece itself is always inside the window.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from asr_service.backends.whisper_utterance import window_seconds

FRAMES_PER_SECOND = 100
_local = threading.local()


@contextlib.contextmanager
def encoder_window(duration: float | None) -> Iterator[None]:
    """Encode this thread's windows for audio of at most ``duration`` seconds (None: the full 30 s)."""
    window = window_seconds(duration) if duration is not None else None
    before = getattr(_local, "frames", None)
    _local.frames = int(window * FRAMES_PER_SECOND) if window is not None else None
    try:
        yield
    finally:
        _local.frames = before


class WindowedEncoder:
    """A ``ctranslate2.models.Whisper`` whose ``encode`` drops the padding :func:`encoder_window` allows."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: Any, to_cpu: bool = False) -> Any:
        """The encoder's output for ``features``, cut to this thread's window if one is set."""
        frames = getattr(_local, "frames", None)
        if frames is None:
            return self._model.encode(features, to_cpu=to_cpu)
        array = np.asarray(features)
        if array.shape[-1] > frames:
            import ctranslate2

            features = ctranslate2.StorageView.from_array(np.ascontiguousarray(array[..., :frames]))
        return self._model.encode(features, to_cpu=to_cpu)
