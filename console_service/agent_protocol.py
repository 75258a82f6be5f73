"""The OpenAI Realtime protocol's two dialects (GA and beta) and the session configuration they carry.

The agent thinks in GA event names; :class:`Dialect` renames events and content types for beta
clients (those that send ``OpenAI-Beta: realtime=v1``) and describes the session in each shape.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from common.errors import BadRequest

SAMPLE_RATE = 24000
"""Audio both ways: pcm16 mono at this rate."""
FORMAT_GA = {"type": "audio/pcm", "rate": SAMPLE_RATE}

_BETA_NAMES = {
    "conversation.item.added": "conversation.item.created",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
}
_BETA_ONLY_GA = {"conversation.item.done"}
"""GA events beta clients do not know (beta has no counterpart)."""
_BETA_CONTENT = {"output_audio": "audio", "output_text": "text"}


@dataclass
class TurnDetection:
    """Server VAD: when a pause ends the person's turn, and what follows it."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True

    def describe(self) -> dict[str, Any]:
        """The ``turn_detection`` object."""
        return {"type": "server_vad", **self.__dict__}


@dataclass
class AgentConfig:
    """One session's configuration, as ``session.update`` leaves it."""

    instructions: str
    voice: str
    max_output_tokens: int
    temperature: float | None = None
    audio_out: bool = True
    """Speak the replies (``["audio"]``); False: text only."""
    language: str | None = None
    """The person's language (ISO 639-1); None: detected per turn."""
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    """None: push-to-talk (the client commits and asks for responses)."""


@dataclass(frozen=True)
class Dialect:
    """GA (the default) or beta event names and shapes."""

    beta: bool = False

    def event_name(self, kind: str) -> str | None:
        """The name of a GA event in this dialect; None when the dialect has no such event."""
        if not self.beta:
            return kind
        if kind in _BETA_ONLY_GA:
            return None
        return _BETA_NAMES.get(kind, kind)

    def content_type(self, kind: str) -> str:
        """An item content type (``output_audio``/``output_text``) in this dialect."""
        return _BETA_CONTENT.get(kind, kind) if self.beta else kind

    def describe(self, session_id: str, model: str, config: AgentConfig) -> dict[str, Any]:
        """The ``session`` object of ``session.created``/``session.updated``."""
        turn = config.turn_detection.describe() if config.turn_detection else None
        transcription = {"model": model, "language": config.language}
        tokens: int | str = config.max_output_tokens
        if self.beta:
            return {
                "id": session_id,
                "object": "realtime.session",
                "model": model,
                "modalities": ["text", "audio"] if config.audio_out else ["text"],
                "instructions": config.instructions,
                "voice": config.voice,
                "input_audio_format": "pcm16",
                "output_audio_format": "pcm16",
                "input_audio_transcription": transcription,
                "turn_detection": turn,
                "temperature": config.temperature,
                "max_response_output_tokens": tokens,
            }
        return {
            "id": session_id,
            "object": "realtime.session",
            "type": "realtime",
            "model": model,
            "output_modalities": ["audio"] if config.audio_out else ["text"],
            "instructions": config.instructions,
            "audio": {
                "input": {"format": FORMAT_GA, "transcription": transcription, "turn_detection": turn},
                "output": {"format": FORMAT_GA, "voice": config.voice, "speed": 1.0},
            },
            "max_output_tokens": tokens,
        }


def apply_update(config: AgentConfig, update: Any, token_limit: int) -> AgentConfig:
    """A copy of ``config`` with a ``session.update``'s ``session`` applied (either dialect's shape).

    Unknown fields are ignored. Raises:
        BadRequest: a field of the wrong type or out of range, or an audio format other than 24 kHz pcm16.
    """
    if not isinstance(update, dict):
        raise BadRequest("session.update needs a `session` object", param="session")
    new = AgentConfig(**config.__dict__)
    audio = _object(update, "audio")
    audio_in, audio_out = _object(audio, "input", "audio"), _object(audio, "output", "audio")
    for name, value in (
        ("audio.input.format", audio_in.get("format")),
        ("audio.output.format", audio_out.get("format")),
        ("input_audio_format", update.get("input_audio_format")),
        ("output_audio_format", update.get("output_audio_format")),
    ):
        _check_format(name, value)
    if (instructions := update.get("instructions")) is not None:
        new.instructions = _string(instructions, "instructions", 32_000)
    voice = audio_out.get("voice", update.get("voice"))
    if voice is not None:
        new.voice = _string(voice, "voice", 64)
    modalities = update.get("output_modalities", update.get("modalities"))
    if modalities is not None:
        if not isinstance(modalities, list) or not modalities or not set(modalities) <= {"text", "audio"}:
            raise BadRequest('output_modalities must be ["audio"] or ["text"]', param="output_modalities")
        new.audio_out = "audio" in modalities
    tokens = update.get("max_output_tokens", update.get("max_response_output_tokens"))
    if tokens is not None:
        new.max_output_tokens = output_tokens(tokens, token_limit)
    if "temperature" in update:
        new.temperature = _temperature(update["temperature"])
    transcription = audio_in.get("transcription", update.get("input_audio_transcription"))
    if isinstance(transcription, dict) and "language" in transcription:
        new.language = _language(transcription["language"])
    turn_given = "turn_detection" in audio_in or "turn_detection" in update
    if turn_given:
        turn = audio_in["turn_detection"] if "turn_detection" in audio_in else update["turn_detection"]
        new.turn_detection = _turn_detection(turn, config.turn_detection)
    return new


def transcription_update(config: AgentConfig) -> dict[str, Any]:
    """The ``session.update`` that gives the ASR's transcription session this language and turn detection."""
    turn = config.turn_detection.describe() if config.turn_detection else None
    transcription = {"language": config.language or "auto"}
    return {
        "type": "session.update",
        "session": {"audio": {"input": {"transcription": transcription, "turn_detection": turn}}},
    }


def output_tokens(value: Any, limit: int) -> int:
    """``max_output_tokens``: an integer in [1, limit], or ``"inf"`` (the limit).

    Raises:
        BadRequest: anything else.
    """
    if value == "inf":
        return limit
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4096:
        raise BadRequest('max_output_tokens must be an integer from 1 to 4096, or "inf"', param="max_output_tokens")
    return min(value, limit)


def decode_audio(value: Any, max_bytes: int) -> bytes:
    """The pcm16 bytes of an ``input_audio_buffer.append``'s ``audio``.

    Raises:
        BadRequest: missing, not base64, an odd number of bytes, or larger than ``max_bytes``.
    """
    if not isinstance(value, str):
        raise BadRequest("input_audio_buffer.append needs `audio`: base64 pcm16", param="audio")
    if len(value) > max_bytes * 4 // 3 + 4:
        raise BadRequest(f"`audio` is over {max_bytes} bytes; send smaller appends", param="audio", code="too_large")
    try:
        pcm = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("`audio` is not valid base64", param="audio", code="invalid_audio") from None
    if len(pcm) % 2:
        raise BadRequest(
            "`audio` has an odd number of bytes; pcm16 needs 2 per sample", param="audio", code="invalid_audio"
        )
    return pcm


def _object(parent: dict[str, Any], name: str, where: str = "session") -> dict[str, Any]:
    value = parent.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where}.{name} must be an object", param=name)
    return value


def _check_format(name: str, value: Any) -> None:
    if value is None or value == "pcm16":
        return
    if (
        isinstance(value, dict)
        and value.get("type") in ("audio/pcm", "pcm16")
        and value.get("rate", SAMPLE_RATE) == SAMPLE_RATE
    ):
        return
    raise BadRequest(f"{name}: only pcm16 at {SAMPLE_RATE} Hz is served", param=name, code="unsupported_format")


def _string(value: Any, name: str, longest: int) -> str:
    if not isinstance(value, str) or len(value) > longest:
        raise BadRequest(f"{name} must be a string of at most {longest} characters", param=name)
    return value


def _temperature(value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 2:
        raise BadRequest("temperature must be a number from 0 to 2", param="temperature")
    return float(value)


def _language(value: Any) -> str | None:
    if value in (None, "", "auto"):
        return None
    if not isinstance(value, str) or not value.isalpha() or not 2 <= len(value) <= 3:
        raise BadRequest("transcription.language must be an ISO 639-1 code", param="language")
    return value.lower()


def _turn_detection(value: Any, current: TurnDetection | None) -> TurnDetection | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type", "server_vad") not in ("server_vad", "semantic_vad"):
        raise BadRequest('turn_detection must be null or {"type": "server_vad", ...}', param="turn_detection")
    turn = TurnDetection(**(current or TurnDetection()).__dict__)
    bounds = {"threshold": (0.0, 1.0), "prefix_padding_ms": (0, 5000), "silence_duration_ms": (100, 5000)}
    for name, (low, high) in bounds.items():
        if name in value:
            number = value[name]
            if not isinstance(number, int | float) or isinstance(number, bool) or not low <= number <= high:
                raise BadRequest(f"turn_detection.{name} must be from {low:g} to {high:g}", param=name)
            setattr(turn, name, number if name == "threshold" else int(number))
    for name in ("create_response", "interrupt_response"):
        if name in value:
            if not isinstance(value[name], bool):
                raise BadRequest(f"turn_detection.{name} must be true or false", param=name)
            setattr(turn, name, value[name])
    return turn
