"""The agent's ear: a Realtime transcription session on the ASR service, one per conversation.

The ASR's ``/v1/realtime`` does voice activity detection and live transcription; this link forwards
the person's audio to it and hands its events (speech started/stopped, committed, transcript deltas
and completions) to the agent on a reader thread.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from common.errors import ApiError, ServiceUnavailable

log = logging.getLogger("suite.agent")
OPEN_TIMEOUT_S = 10.0


class AsrLink:
    """One transcription session on the ASR service; ``on_event`` gets its events, ``on_closed`` its end."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        on_event: Callable[[dict[str, Any]], None],
        on_closed: Callable[[str], None],
    ) -> None:
        url = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/v1/realtime"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            self._socket: ClientConnection = connect(
                url, additional_headers=headers, open_timeout=OPEN_TIMEOUT_S, max_size=None, compression=None
            )
        except InvalidStatus as error:
            raise ServiceUnavailable(
                f"the ASR service refused the session (HTTP {error.response.status_code})"
            ) from None
        except (OSError, InvalidHandshake, TimeoutError) as error:
            raise ServiceUnavailable(f"the ASR service is not reachable at {base_url}: {error}") from None
        self._on_event = on_event
        self._on_closed = on_closed
        self._closing = False
        self._reader = threading.Thread(target=self._read, name="agent-asr", daemon=True)
        self._reader.start()

    def send(self, event: dict[str, Any]) -> None:
        """Forward one client event (append, commit, clear, session.update).

        Raises:
            ServiceUnavailable: the ASR session has ended.
        """
        try:
            self._socket.send(json.dumps(event))
        except ConnectionClosed:
            raise ServiceUnavailable("the ASR session ended") from None

    def close(self) -> None:
        """End the ASR session (its decodes stop) and wait for the reader."""
        self._closing = True
        self._socket.close()
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=5)

    def _read(self) -> None:
        reason = "the ASR session closed"
        try:
            for message in self._socket:
                event = json.loads(message)
                if isinstance(event, dict):
                    self._on_event(event)
        except ConnectionClosed:
            pass
        except ApiError as error:
            reason = error.message
        except Exception:  # a fault here must end the conversation, not leave it deaf
            log.exception("the agent's ASR link failed")
            reason = "the agent's link to the ASR failed"
        if not self._closing:
            self._on_closed(reason)
