"""Talking to the voice agent the way a Realtime client does: the stock ``openai`` SDK, audio in real time.

For tests and benchmarks: :func:`connect` opens a GA (or beta) connection, :func:`say` plays pcm16 at
24 kHz into it paced like a microphone, :class:`Turn` collects one reply's events with timestamps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from openai import AsyncOpenAI

from common.audio import resample
from core_agent import AUDIO_DELTAS, TEXT_DELTAS

RATE = 24000
CHUNK_S = 0.1


def pcm24(samples: np.ndarray, rate: int) -> bytes:
    """Float samples at ``rate`` as pcm16 mono at 24 kHz."""
    return (np.clip(resample(samples.astype(np.float32), rate, RATE), -1, 1) * 32767).astype("<i2").tobytes()


@contextlib.asynccontextmanager
async def connect(base_url: str, *, beta: bool = False, api_key: str = "unused") -> AsyncIterator[Any]:
    """A Realtime connection to the console at ``base_url`` (``http://host:port``) through the stock SDK."""
    client = AsyncOpenAI(api_key=api_key, websocket_base_url=base_url.replace("http", "ws", 1) + "/v1")
    realtime = client.beta.realtime if beta else client.realtime
    async with realtime.connect(model="gpt-realtime") as connection:
        yield connection


async def say(connection: Any, pcm: bytes, *, silence_s: float = 0.0, speed: float = 1.0) -> float:
    """Append ``pcm`` in 100 ms pieces at ``speed`` x real time, then ``silence_s`` of silence;
    returns the monotonic time the last speech sample was sent (the speech end)."""
    step = int(RATE * CHUNK_S) * 2
    started = time.monotonic()
    speech_end = started
    pieces = [pcm[i : i + step] for i in range(0, len(pcm), step)] + [bytes(step)] * round(silence_s / CHUNK_S)
    for index, piece in enumerate(pieces):
        await connection.input_audio_buffer.append(audio=base64.b64encode(piece).decode("ascii"))
        if index * step < len(pcm):
            speech_end = time.monotonic()
        await asyncio.sleep(max(0.0, started + (index + 1) * CHUNK_S / speed - time.monotonic()))
    return speech_end


@dataclass
class Turn:
    """One reply as the client saw it: its events, audio and transcript, with arrival times."""

    heard: str = ""
    response_id: str | None = None
    item_id: str | None = None
    status: str | None = None
    transcript: str = ""
    audio: bytearray = field(default_factory=bytearray)
    first_audio_at: float | None = None
    done_at: float | None = None
    speech_started_at: list[float] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    after_done: list[str] = field(default_factory=list)
    """Events of this reply that came after its ``response.done`` (must stay empty)."""

    def see(self, event: Any) -> bool:
        """Record one event; True once this reply's ``response.done`` came."""
        now = time.monotonic()
        kind = event.type
        self.events.append((now, kind))
        if kind == "input_audio_buffer.speech_started":
            self.speech_started_at.append(now)
        elif kind == "conversation.item.input_audio_transcription.completed" and event.transcript:
            self.heard = event.transcript
        elif kind == "response.created" and self.response_id is None:
            self.response_id = event.response.id
        elif getattr(event, "response_id", None) == self.response_id and self.done_at is not None:
            self.after_done.append(kind)
        elif kind == "response.output_item.added" and event.response_id == self.response_id:
            self.item_id = event.item.id
        elif kind in AUDIO_DELTAS:
            self.audio += base64.b64decode(event.delta)
            self.first_audio_at = self.first_audio_at or now
        elif kind in TEXT_DELTAS:
            self.transcript += event.delta
        elif kind == "response.done" and event.response.id == self.response_id:
            self.status = event.response.status
            self.done_at = now
            return True
        return False


async def reply(connection: Any, turn: Turn | None = None, timeout: float = 120.0) -> Turn:
    """Read events until the next reply is done."""
    turn = turn or Turn()
    async with asyncio.timeout(timeout):
        async for event in connection:
            if turn.see(event):
                return turn
    raise ConnectionError("the connection closed before the reply was done")
