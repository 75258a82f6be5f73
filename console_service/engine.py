"""The console's engine: no model; "loading" only checks the page's files are there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.lifecycle import ModelEngine
from console_service.settings import ConsoleSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE_FILES = (
    "index.html",
    "app.js",
    "audio.js",
    "clauses.js",
    "i18n.js",
    "panels.js",
    "services.js",
    "pcm-worklet.js",
    "style.css",
    "view.js",
)
SERVICE_NAMES = ("asr", "llm", "tts", "embedding")


class ConsoleEngine(ModelEngine):
    """Serves no model; ready once the static page is found."""

    def __init__(self, settings: ConsoleSettings) -> None:
        super().__init__()
        self.settings = settings

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
        """What the page links to."""
        return {
            "page": "voice console",
            "services": {name: link.url or f":{link.port}" for name, link in self.settings.services.items()},
        }

    def service_urls(self, page_host: str) -> dict[str, str]:
        """Each service's base URL for a page loaded from ``page_host`` (a hostname, no port)."""
        host = f"[{page_host}]" if ":" in page_host else page_host
        return {
            name: (link.url or f"http://{host}:{link.port}").rstrip("/")
            for name, link in self.settings.services.items()
        }
