"""The TTS engine: validate, pick or derive a voice, synthesise clause by clause. No HTTP here.

>>> engine = TtsEngine(TtsSettings.load()); engine.start(background=False)
>>> speech = engine.synthesize("你好，world", style="style2")
>>> speech.samples, speech.sample_rate
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from common.audio import Audio, decode_audio, resample
from common.errors import BadRequest
from common.lifecycle import SingleModelEngine
from common.model_slot import LeasedStream, collect
from common.settings import REPO_ROOT, ConfigError
from tts_service.backends import PreparedVoice, SynthesisParams, TtsBackend, VoicePreset
from tts_service.settings import TtsSettings
from tts_service.text import Clause, split_clauses

log = logging.getLogger("suite.tts")


@dataclass(frozen=True)
class Speech:
    """Finished audio: float32 mono in [-1, 1]."""

    samples: np.ndarray
    sample_rate: int
    voice: dict[str, Any]
    """Facts about the voice used (style, or what was measured in the reference)."""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.size / self.sample_rate


class SpeechStream:
    """Audio chunks (one per clause, pause included) as they are made; iterate once.

    Closing it (or the client leaving) stops synthesis and frees the model.
    """

    def __init__(
        self, sample_rate: int, voice: dict[str, Any], chunks: LeasedStream[np.ndarray], cleanup: Callable[[], None]
    ) -> None:
        self.sample_rate = sample_rate
        self.voice = voice
        self._chunks = chunks
        self._cleanup = cleanup

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            yield from self._chunks
        finally:
            self.close()

    def close(self) -> None:
        """Stop synthesis, free the model for the next request and drop the voice (idempotent)."""
        try:
            self._chunks.close()
        finally:
            self._cleanup()


def load_presets(directory: Path) -> dict[str, VoicePreset]:
    """Read every ``<name>.yaml`` in ``directory`` as a preset.

    Raises:
        ConfigError: the directory is missing or empty, or a preset is malformed.
    """
    directory = directory if directory.is_absolute() else REPO_ROOT / directory
    if not directory.is_dir():
        raise ConfigError(f"voices_dir {directory} does not exist")
    presets: dict[str, VoicePreset] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            reference = data.pop("reference_audio", None)
            if reference is not None:
                reference = (path.parent / reference).resolve()
                if not reference.is_file():
                    raise ConfigError(f"reference_audio {reference} does not exist")
            presets[path.stem] = VoicePreset(name=path.stem, reference_audio=reference, **data)
        except (yaml.YAMLError, TypeError) as exc:
            raise ConfigError(f"invalid voice preset {path}: {exc}") from exc
    if not presets:
        raise ConfigError(f"no voice presets (*.yaml) in {directory}")
    return presets


class TtsEngine(SingleModelEngine[TtsBackend]):
    """One backend, used by one request at a time behind a bounded wait queue."""

    settings: TtsSettings

    def __init__(self, settings: TtsSettings) -> None:
        super().__init__(settings)
        self.presets = load_presets(settings.voices_dir)
        unknown = {settings.default_style, *settings.voice_aliases.values()} - self.presets.keys()
        if unknown:
            raise ConfigError(f"styles {sorted(unknown)} are named in the config but have no preset")

    def preset(self, style: str | None, param: str = "style") -> VoicePreset:
        """The preset for a style name or voice alias; None gives the default style.

        Raises:
            BadRequest: unknown name (the message lists the styles).
        """
        name = self.settings.voice_aliases.get(style, style) if style else self.settings.default_style
        if name not in self.presets:
            known = sorted(self.presets) + sorted(self.settings.voice_aliases)
            raise BadRequest(f"unknown {param} {style!r}; available: {', '.join(known)}", param=param)
        return self.presets[name]

    def check_text(self, text: str, param: str = "text") -> list[Clause]:
        """Split text into clauses after checking it.

        Raises:
            BadRequest: empty, too long, or nothing speakable in it.
        """
        if not text.strip():
            raise BadRequest(f"{param} is empty", param=param)
        if len(text) > self.settings.limits.max_text_chars:
            raise BadRequest(
                f"{param} has {len(text)} characters; the limit is {self.settings.limits.max_text_chars}", param=param
            )
        clauses = split_clauses(text, self.settings.limits.max_clause_chars)
        if not clauses:  # split_clauses drops pieces without a letter or digit
            raise BadRequest(f"{param} has nothing to speak (no letters or digits)", param=param)
        return clauses

    def decode_prompt(self, data: bytes, param: str = "prompt_audio") -> Audio:
        """Decode a reference recording within the prompt length bounds.

        Raises:
            AudioError: empty, corrupt, not audio, shorter than ``min_prompt_s`` or too long.
        """
        limits = self.settings.limits
        audio = decode_audio(data, sample_rate=self.settings.sample_rate, max_seconds=limits.max_prompt_s, param=param)
        if audio.duration < limits.min_prompt_s:
            raise BadRequest(
                f"{param} is {audio.duration:.2f} s long; at least {limits.min_prompt_s:g} s of speech is needed",
                param=param,
            )
        return audio

    def synthesize(
        self,
        text: str,
        style: str | None = None,
        prompt_audio: bytes | None = None,
        params: SynthesisParams | None = None,
        client_gone: Callable[[], bool] | None = None,
    ) -> Speech:
        """Speak a whole text; with ``client_gone``, stop between clauses once the client has left.

        Raises:
            ClientGone: the client left first.
            BadRequest: bad text, unknown style, unusable prompt audio.
            Overloaded: too many requests already wait for the model.
            ServiceUnavailable: not loaded, or waited too long.
        """
        stream = self.stream(text, style, prompt_audio, params)
        chunks = collect(stream, client_gone)
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        return Speech(samples, stream.sample_rate, stream.voice)

    def stream(
        self,
        text: str,
        style: str | None = None,
        prompt_audio: bytes | None = None,
        params: SynthesisParams | None = None,
        *,
        text_param: str = "text",
        style_param: str = "style",
    ) -> SpeechStream:
        """Start speaking; each chunk is one clause and its pause, as soon as it is made.

        Everything that can be refused is raised here, before the first chunk; errors name
        ``text_param``/``style_param`` (OpenAI's request calls them ``input`` and ``voice``).
        """
        self.ensure_ready()
        clauses = self.check_text(text, text_param)
        preset = self.preset(style, style_param)
        reference = self.decode_prompt(prompt_audio) if prompt_audio is not None else None
        params = params or SynthesisParams()
        backend = self._backend
        assert backend is not None
        voice = backend.prepare(preset, reference)
        try:
            lease = self.slot.acquire()
        except BaseException:
            voice.close()
            raise
        facts = {"style": "prompt_audio" if reference is not None else preset.name, **voice.describe()}
        chunks = self._speak(backend, clauses, voice, params, time.perf_counter())
        return SpeechStream(self.settings.sample_rate, facts, LeasedStream(chunks, lease), voice.close)

    def _speak(
        self, backend: TtsBackend, clauses: list[Clause], voice: PreparedVoice, params: SynthesisParams, started: float
    ) -> Iterator[np.ndarray]:
        rate = self.settings.sample_rate
        produced = 0.0
        outcome = "stopped"  # stays so when the consumer closes us early (client gone)
        try:
            for clause in clauses:
                audio = resample(backend.synthesize(clause.text, voice, params), backend.sample_rate, rate)
                if not audio.size:
                    continue
                pause = np.zeros(int(clause.pause_s * rate), np.float32)
                produced += (audio.size + pause.size) / rate
                yield np.concatenate((audio, pause))
            outcome = "done"
        except Exception:
            outcome = "failed"
            raise
        finally:
            seconds = time.perf_counter() - started
            self.observe_call(started, outcome)
            if outcome == "stopped":
                log.info("synthesis stopped after %.1f s of audio, %.2f s: stream closed", produced, seconds)
            elif outcome == "done":
                log.info("synthesised %.1f s of audio in %.2f s (%d clauses)", produced, seconds, len(clauses))

    def describe(self) -> dict[str, Any]:
        """Model facts for ``/health``."""
        return {
            "model": self.settings.model_name,
            "backend": self.settings.backend,
            "styles": sorted(self.presets),
            "sample_rate": self.settings.sample_rate,
        }
