"""Settings of the voice console (``configs/console.yaml`` + ``CONSOLE__*`` env vars)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from common.settings import ServiceSettings


class ServiceLink(BaseModel):
    """Where the page finds one service."""

    model_config = ConfigDict(extra="forbid")

    url: str = ""
    """Base URL the browser calls (e.g. ``http://127.0.0.1:7205``). Empty: the host the page was loaded
    from, at ``port`` (so ``localhost`` and ``127.0.0.1`` each reach the services under the same name)."""
    port: int = Field(ge=1, le=65535)


class ConsoleSettings(ServiceSettings):
    """Everything the console reads from config."""

    service_name: ClassVar[str] = "console"

    services: dict[str, ServiceLink]
    """The four services the page calls: ``asr``, ``llm``, ``tts``, ``embedding``."""
