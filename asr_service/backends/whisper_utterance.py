"""Whisper on one short utterance in a short window: the live path's fast decode.

Whisper's encoder always reads a 30 s window, and its cost grows faster than the window; for an
utterance of a few seconds that is most of the decode. CTranslate2's encoder takes shorter windows:
the utterance is padded with silence to the next 5 s (at least 1.5 s of it, which the decoder needs to
end cleanly) and decoded with timestamps, as Whisper was trained. A short window can make Whisper
repeat itself; a loop (a run of words, or characters for unspaced scripts, repeated back to back or
three times) sends the utterance back to the ordinary 30 s decode, so the fast path never returns worse
text than a loop.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
TAIL_S = 1.5
"""Silence after the utterance inside the window."""
STEP_S = 5.0
MAX_WINDOW_S = 30.0
_WORD = re.compile(r"\w+")


def window_seconds(duration: float) -> float | None:
    """The window for an utterance of ``duration`` seconds, or None when only the full 30 s fits."""
    window = max(STEP_S, math.ceil((duration + TAIL_S) / STEP_S) * STEP_S)
    return window if window < MAX_WINDOW_S else None


def repeats(text: str) -> bool:
    """Whether the text loops: a run of 3+ words (4+ characters of unspaced text) twice in a row, or one
    run of 3 words (5 characters) three times.

    A phrase that comes back later in a sentence ("the size of the drops ... as the size of the drops
    increases") is speech, not a loop; treating it as one made partials of such sentences give up.
    """
    words = _WORD.findall(text.lower())
    if len(words) * 3 < len(text.replace(" ", "")) / 2:  # few spaces: Chinese, Japanese
        units: list[str] = [c for c in text if not c.isspace() and c.isalnum()]
        run, gram = 4, 5
    else:
        units, run, gram = words, 3, 3
    count = len(units)
    for length in range(run, count // 2 + 1):
        for i in range(count - 2 * length + 1):
            if units[i : i + length] == units[i + length : i + 2 * length]:
                return True
    grams = Counter(tuple(units[i : i + gram]) for i in range(count - gram + 1))
    return max(grams.values(), default=0) >= 3


PREVIOUS_TOKENS = 64
"""At most this many tokens of the earlier text go into the prompt (Whisper allows 223)."""


def decode_utterance(
    model: Any,
    samples: np.ndarray,
    language: str | None,
    beam_size: int,
    *,
    give_up_on_loops: bool = False,
    said_before: str = "",
) -> tuple[str, str] | None:
    """Text and language of one utterance, or None when the caller should decode it the ordinary way.

    Args:
        model: a ``faster_whisper.WhisperModel``.
        samples: 16 kHz mono float32, the utterance with a little silence around it.
        language: the language to decode in, or None to detect it from this window.
        give_up_on_loops: a text that repeats itself gives no text instead of None (for partials, which
            the next decode replaces anyway: the ordinary decode would cost several partials' time).
        said_before: the text just before these samples, as Whisper's previous-text prompt.
    """
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_ctranslate2_storage

    duration = len(samples) / SAMPLE_RATE
    window = window_seconds(duration)
    if window is None or not len(samples):
        return None
    padded = np.zeros(int(window * SAMPLE_RATE), dtype=np.float32)
    padded[: len(samples)] = samples
    features = model.feature_extractor(padded)[:, : int(window * 100)]
    encoded = model.model.encode(get_ctranslate2_storage(np.ascontiguousarray(features[None], dtype=np.float32)))
    if language is None:
        language = model.model.detect_language(encoded)[0][0][0][2:-2]
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    prompt = list(tokenizer.sot_sequence)
    if said_before:
        prompt = [tokenizer.sot_prev, *tokenizer.encode(" " + said_before.strip())[-PREVIOUS_TOKENS:], *prompt]
    result = model.model.generate(
        encoded,
        [prompt],
        beam_size=beam_size,
        max_length=min(448, int(24 + 12 * (window - TAIL_S))),  # by window, so that utterances batch
        suppress_blank=True,
        suppress_tokens=[-1],
    )
    text = tokenizer.decode(result[0].sequences_ids[0]).strip()
    if repeats(text):
        return ("", language) if give_up_on_loops else None
    return text, language
