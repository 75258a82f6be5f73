"""espeak-ng through ctypes (the library and its data ship in ``espeakng-loader``): the fallback for
scripts neither Chinese nor English (Cyrillic, Greek, Arabic, kana, Hangul, ...). Robotic, tiny, fast.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE_PARAMETER = 1
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_lock = threading.Lock()  # espeak-ng keeps global state: one synthesis at a time per process


class EspeakVoice:
    """Text in a given espeak-ng language → float32 speech at :attr:`sample_rate`."""

    def __init__(self) -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self.sample_rate: int = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if self.sample_rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced: espeak calls it later
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples: ctypes._Pointer, count: int, _events: int) -> int:
        if count > 0 and samples:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).astype(np.float32) / 32768.0)
        return 0

    def synthesize(self, text: str, *, language: str = "en", words_per_minute: int = 170) -> np.ndarray:
        """Speech for ``text`` read as ``language`` (an espeak-ng voice name such as ``ru`` or ``cmn``)."""
        data = text.encode("utf-8") + b"\0"
        buffer = ctypes.create_string_buffer(data)
        with _lock:
            self._chunks = []
            if self._lib.espeak_SetVoiceByName(language.encode()) != 0:
                self._lib.espeak_SetVoiceByName(b"en")
            self._lib.espeak_SetParameter(_RATE_PARAMETER, int(words_per_minute), 0)
            self._lib.espeak_Synth(buffer, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
