"""The console's engine: no model. "Loading" checks the page's files; it holds the agent's clients."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from common.lifecycle import ModelEngine
from console_service.agent import AgentServices
from console_service.agent_asr import AsrLink
from console_service.settings import ConsoleSettings
from core import LLMClient, TTSClient
from core_errors import SuiteError

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE_FILES = (
    "index.html",
    "app.js",
    "agent.js",
    "audio.js",
    "i18n.js",
    "panels.js",
    "services.js",
    "pcm-worklet.js",
    "style.css",
    "view.js",
)
SERVICE_NAMES = ("asr", "llm", "tts", "embedding")
AGENT_MODEL = "suite-voice-agent"
"""The model name the agent's sessions report."""
VOICES_TTL_S = 60.0


class ConsoleEngine(ModelEngine):
    """Serves no model; ready once the static page is found. Owns the agent's session slots and clients."""

    def __init__(self, settings: ConsoleSettings) -> None:
        super().__init__()
        self.settings = settings
        self.agent_slots = (
            threading.BoundedSemaphore(settings.agent.max_sessions) if settings.agent.max_sessions else None
        )
        self._services: AgentServices | None = None
        self._voices: tuple[float, set[str]] = (0.0, set())

    def _load(self) -> None:
        missing = [name for name in PAGE_FILES if not (STATIC_DIR / name).is_file()]
        if missing:
            raise FileNotFoundError(f"console page files missing from {STATIC_DIR}: {', '.join(missing)}")
        unknown = set(SERVICE_NAMES) ^ set(self.settings.services)
        if unknown:
            raise ValueError(
                f"services must be exactly {', '.join(SERVICE_NAMES)} (check {', '.join(sorted(unknown))})"
            )

    def describe(self) -> dict[str, Any]:
        """What the page links to, and the agent's capacity."""
        return {
            "page": "voice console",
            "services": {name: link.url or f":{link.port}" for name, link in self.settings.services.items()},
            "agent": {"route": "/v1/realtime", "max_sessions": self.settings.agent.max_sessions},
        }

    def service_urls(self, page_host: str) -> dict[str, str]:
        """Each service's base URL for a page loaded from ``page_host`` (a hostname, no port)."""
        host = f"[{page_host}]" if ":" in page_host else page_host
        return {
            name: (link.url or f"http://{host}:{link.port}").rstrip("/")
            for name, link in self.settings.services.items()
        }

    def agent_services(self) -> AgentServices:
        """The agent's view of the suite (clients built once, shared by the sessions)."""
        if self._services is None:
            links = self.settings.services
            secret = self.settings.server.api_key
            key = secret.get_secret_value() if secret is not None else None
            asr_url = links["asr"].server_url()
            self._services = AgentServices(
                open_asr=lambda on_event, on_closed: AsrLink(asr_url, key, on_event, on_closed),
                llm=LLMClient(links["llm"].server_url(), api_key=key, timeout=120),
                tts=TTSClient(links["tts"].server_url(), api_key=key, timeout=120),
                model=AGENT_MODEL,
                voices=self.voices,
            )
        return self._services

    def voices(self) -> set[str]:
        """The TTS's voice names and aliases, asked at most once a minute; empty when it cannot be asked."""
        asked, names = self._voices
        if time.monotonic() - asked < VOICES_TTL_S:
            return names
        try:
            styles = self.agent_services().tts.styles()
            names = {style["name"] for style in styles["styles"]} | set(styles["aliases"])
        except (SuiteError, KeyError, TypeError):
            names = set()
        self._voices = (time.monotonic(), names)
        return names
