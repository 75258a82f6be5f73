"""Wire schemas of the TTS service: the seed's form, OpenAI's speech request, voice listings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ResponseFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


class SynthesizeForm(BaseModel):
    """Form fields of `/synthesize` and `/synthesize/stream` besides the optional `prompt_audio` file."""

    text: str = Field(description="Text to speak: Chinese, English or both")
    style: str | None = Field(default=None, description="Preset voice (see /styles); default when absent")
    temperature: float | None = Field(default=None, gt=0, le=2, description="Sampling temperature (0, 2]")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling (0, 1]")
    top_k: int | None = Field(default=None, ge=1, le=1000, description="Top-k sampling (cloning backends)")
    speed: float = Field(default=1.0, ge=0.25, le=4.0, description="Speaking-rate multiplier")


class SpeechRequest(BaseModel):
    """OpenAI's `POST /v1/audio/speech` body."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    input: str = Field(description="Text to speak (at most 4096 characters)")
    voice: str | None = Field(default=None, description="A style (style1, ...) or an OpenAI voice name mapped to one")
    instructions: str | None = Field(
        default=None, max_length=4096, description="Accepted; the offline engine ignores it"
    )
    response_format: ResponseFormat = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"


class Style(BaseModel):
    """A preset voice."""

    name: str
    language: str
    description: str


class StyleList(BaseModel):
    """`GET /styles`."""

    default: str
    styles: list[Style]
    aliases: dict[str, str]


class VoiceCard(BaseModel):
    """One voice in `GET /v1/audio/voices`."""

    id: str
    name: str
    language: str
    description: str


class VoiceList(BaseModel):
    """`GET /v1/audio/voices`."""

    object: Literal["list"] = "list"
    data: list[VoiceCard]
    default: str
