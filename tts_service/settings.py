"""Settings of the TTS service (``configs/tts.yaml`` + ``TTS__*`` env vars)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from common.settings import REPO_ROOT, ModelServiceSettings, QueueLimits
from tts_service.backends import BACKENDS


class TtsLimits(QueueLimits):
    """Input and queue bounds."""

    max_text_chars: int = Field(default=4096, ge=1)
    """Longest text accepted (longer: 400). OpenAI's own limit is 4096."""
    max_clause_chars: int = Field(default=120, ge=10)
    """Text without punctuation is cut into pieces this long, so memory and latency stay flat."""
    min_prompt_s: float = Field(default=1.0, gt=0)
    """Shortest reference recording accepted."""
    max_prompt_s: float = Field(default=60.0, gt=0)
    """Longest reference recording accepted."""
    max_waiting: int = Field(default=4, ge=0)
    """Requests that may wait while the model is busy; more get 429."""


class TtsSettings(ModelServiceSettings):
    """Everything the TTS service reads from config."""

    service_name: ClassVar[str] = "tts"
    backends = BACKENDS

    voices_dir: Path = REPO_ROOT / "tts_service" / "voices"
    """Directory of ``<style>.yaml`` presets (and their reference recordings)."""
    default_style: str = "style1"
    """Style used when a request names none."""
    voice_aliases: dict[str, str] = Field(default_factory=dict)
    """Other voice names accepted (OpenAI's ``alloy``, ``nova``, ...) and the style each means."""
    sample_rate: int = Field(default=24000, ge=8000, le=48000)
    """Rate of every response (backend output is resampled to it)."""
    limits: TtsLimits = TtsLimits()
