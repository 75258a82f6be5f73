"""Settings of the voice console (``configs/console.yaml`` + ``CONSOLE__*`` env vars)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from common.settings import ServiceSettings


class ServiceLink(BaseModel):
    """Where the page, and the agent, find one service."""

    model_config = ConfigDict(extra="forbid")

    url: str = ""
    """Base URL the browser calls (e.g. ``http://127.0.0.1:7205``). Empty: the host the page was loaded
    from, at ``port`` (so ``localhost`` and ``127.0.0.1`` each reach the services under the same name)."""
    port: int = Field(ge=1, le=65535)
    internal_url: str = ""
    """Base URL the console itself calls (the voice agent), e.g. ``http://asr:7205`` in a cluster.
    Empty: ``url`` when set, else ``http://127.0.0.1:<port>``."""

    def server_url(self) -> str:
        """The base URL the agent calls."""
        return (self.internal_url or self.url or f"http://127.0.0.1:{self.port}").rstrip("/")


class AgentSettings(BaseModel):
    """``agent:`` group: the Realtime voice agent at ``/v1/realtime``."""

    model_config = ConfigDict(extra="forbid")

    max_sessions: int = Field(default=4, ge=0, le=64)
    """Conversations at once; the next one gets an ``error`` event and close code 1013."""
    instructions: str = (
        "You are a helpful voice assistant. Answer briefly, in one to three short sentences, "
        "in the language of the question. Do not use lists, code or markdown."
    )
    """System instructions until a client's ``session.update`` sets its own."""
    voice: str = "alloy"
    """TTS voice (a style or an OpenAI voice name); the TTS speaks Chinese and English text in each."""
    max_output_tokens: int = Field(default=160, ge=1, le=4096)
    """Longest reply, in LLM tokens, unless the client asks for fewer."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Sampling temperature sent to the LLM; unset: the LLM service's default."""
    history_tokens: int = Field(default=3000, ge=256)
    """Conversation kept in the prompt (estimated tokens); the oldest turns are dropped first."""
    audio_chunk_ms: int = Field(default=200, ge=20, le=2000)
    """Reply audio per ``output_audio.delta`` event."""
    max_append_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Largest ``input_audio_buffer.append`` (its pcm16 bytes); larger get an ``error`` event (a frame
    over 32 MiB closes the session, 1009)."""
    transcript_wait_s: float = Field(default=30.0, gt=0)
    """Longest a response waits for the transcript of the person's last turn."""
    idle_timeout_s: float = Field(default=600.0, gt=0)
    """A session with no client event for this long is closed."""


class ConsoleSettings(ServiceSettings):
    """Everything the console reads from config."""

    service_name: ClassVar[str] = "console"

    services: dict[str, ServiceLink]
    """The four services the page calls: ``asr``, ``llm``, ``tts``, ``embedding``."""
    agent: AgentSettings = Field(default_factory=AgentSettings)
    """The voice agent's bounds and defaults."""
