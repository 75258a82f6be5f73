"""What a live session asks of its decoder: decode jobs, the decode call, and the decoder's side as a Protocol.

Kept apart from the session and the decoder so that neither imports the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from asr_service.pcm import RATE
from common.errors import ApiError

Decode = Callable[[np.ndarray, str | None, bool, str], tuple[str, str | None]]
"""``decode(samples_16k, language, may_be_final, said_before) -> (text, language)``; the caller holds the model.
``said_before`` is the text of the utterance's kept beginning (empty for a whole utterance).

A decode that may not be final (``may_be_final`` false) may give up on audio the model loops on and
return no text; one that may be final never gives up."""


class JobOwner(Protocol):
    """The session a decode job belongs to, as the decoder sees it."""

    id: str

    def deliver(self, job: DecodeJob, text: str, language: str | None) -> None:
        """Take a decode's result."""

    def dropped(self, job: DecodeJob) -> None:
        """A partial decode was given up."""

    def fail(self, error: ApiError) -> None:
        """End the session with an error event."""


@dataclass
class DecodeJob:
    """One decode the session wants: samples of one utterance, and whether the result is final."""

    session: JobOwner
    utterance: int
    start: int
    end: int
    samples: np.ndarray
    final: bool
    language: str | None
    may_be_final: bool
    """Decoded as a final is (never gives up): a final, or a speculative decode of exactly what the final will be."""
    requested: float = field(default_factory=time.monotonic)
    decode_from: int = -1
    """First sample of :attr:`samples` (after the utterance's kept beginning); -1: :attr:`start`."""
    prefix: str = ""
    """The kept beginning's text: the result is this joined with the decoded text."""

    def __post_init__(self) -> None:
        if self.decode_from < 0:
            self.decode_from = self.start

    @property
    def key(self) -> tuple[int, int, int]:
        """(utterance, first sample, end sample)."""
        return (self.utterance, self.start, self.end)


class SessionDecoder(Protocol):
    """The decoder as a session sees it."""

    def wake(self) -> None:
        """A session may have work."""

    def remove(self, session: JobOwner) -> None:
        """Forget a closed session."""


def join_text(prefix: str, text: str) -> str:
    """A kept beginning and the text decoded after it: no space between CJK characters, and the period
    Whisper puts at the end of a piece dropped when the text goes on in lower case."""
    if not prefix or not text:
        return prefix or text
    if text[0].islower() and prefix.endswith("."):
        prefix = prefix[:-1]
    cjk = ord(prefix[-1]) > 0x2E80 or ord(text[0]) > 0x2E80
    return prefix + ("" if cjk else " ") + text


def seconds(samples: int) -> float:
    """Samples at 16 kHz as seconds, to the millisecond."""
    return round(samples / RATE, 3)
