"""Wire schemas of the ASR service: seed form fields and OpenAI's transcription form."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LanguageCode = Annotated[
    str | None,
    Field(pattern=r"^(auto|[a-z]{2,3}([-_][A-Za-z]{2,4})?)$", description="ISO 639 code (en, zh); auto detects"),
]


def _auto_is_none(value: str | None) -> str | None:
    return None if value in (None, "auto") else value.split("-")[0].split("_")[0]


class AsrForm(BaseModel):
    """Form fields of `/asr` and `/asr/stream` besides `file` (all optional)."""

    language: LanguageCode = None
    hotwords: str | None = Field(default=None, max_length=1000)
    prompt: str | None = Field(default=None, max_length=2000)

    _language = field_validator("language")(_auto_is_none)


class TranscriptionForm(BaseModel):
    """OpenAI's `/v1/audio/transcriptions` form besides `file`."""

    model: str | None = None
    language: LanguageCode = None
    prompt: str | None = Field(default=None, max_length=2000)
    response_format: Literal["json", "text", "srt", "vtt", "verbose_json"] = "json"
    temperature: float | None = Field(default=None, ge=0, le=1)
    timestamp_granularities: list[Literal["word", "segment"]] = []
    stream: bool = False

    _language = field_validator("language")(_auto_is_none)


class SegmentOut(BaseModel):
    """A decoded stretch of speech."""

    start: float
    end: float
    text: str


class AsrResponse(BaseModel):
    """`/asr`: the seed's `text` plus detail, and any labels the backend gives (SenseVoice: emotion, event)."""

    model_config = ConfigDict(extra="allow")

    text: str
    model: str
    language: str | None
    duration: float
    segments: list[SegmentOut]
    emotion: str | None = None
    event: str | None = None


class StreamLine(BaseModel):
    """`/asr/stream` lines: `{"partial_text"}` per segment, then `{"event": "done", "text"}` (or `"error"`)."""

    partial_text: str | None = None
    event: Literal["done", "error"] | None = None
    text: str | None = None
    message: str | None = None


class TranscriptionJson(BaseModel):
    """OpenAI `json` (and, with more keys, `verbose_json`)."""

    text: str
    language: str | None = None
    duration: float | None = None
    segments: list[dict[str, Any]] | None = None
    words: list[dict[str, Any]] | None = None
