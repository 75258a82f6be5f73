"""The voice agent client of ``core.py``: a spoken conversation over the console's ``/v1/realtime``.

The console's voice agent speaks OpenAI's Realtime protocol (see docs/console.md). This client plays a
recording into it as a microphone would (pcm16 at 24 kHz in 100 ms appends, in real time or as fast as
it goes), follows it with silence so that the agent's voice activity detection ends the turn, and
collects what the agent heard and what it answered, text and audio. One connection holds the whole
conversation: each :meth:`AgentConversation.say` is a turn, and the agent remembers the earlier ones.

    with Core().agent(instructions="Answer in one sentence.") as talk:
        first = talk.say("question.wav")
        print(first.heard, "->", first.reply)
        Path("reply.wav").write_bytes(first.audio)
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core_errors import ERROR_BY_TYPE, ServiceUnavailableError, StreamError, SuiteError, UpstreamFailureError

RATE = 24000
"""The agent's audio, both ways: pcm16 mono at this rate."""
CHUNK_S = 0.1
_UPSTREAM_CODES = ("llm_failed", "tts_failed", "upstream_closed")
"""Error codes of a service behind the agent failing: :class:`UpstreamFailureError`."""
AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
"""Reply audio events, GA and beta names."""
TEXT_DELTAS = (
    "response.output_audio_transcript.delta",
    "response.audio_transcript.delta",
    "response.output_text.delta",
    "response.text.delta",
)


@dataclass
class AgentReply:
    """One turn of the conversation as the client saw it."""

    heard: str
    """What the agent heard (its transcript of the person's turn)."""
    reply: str
    """The reply's text (what was spoken)."""
    audio: bytes
    """The reply's speech as a WAV (24 kHz mono 16-bit); empty for a text-only session."""
    status: str
    """``completed``, ``incomplete`` (the length limit) or ``failed``."""
    first_audio_s: float | None
    """Seconds from the end of the person's speech to the first reply audio."""
    done_s: float
    """Seconds from the end of the person's speech to the reply's ``response.done``."""
    events: list[str] = field(default_factory=list)
    """The server events of this turn, in order (audio deltas counted once)."""


def pcm24k(audio: str | Path | bytes) -> bytes:
    """A 16-bit mono WAV (path or bytes) as pcm16 at 24 kHz (linearly resampled when needed).

    Raises:
        ValueError: not a 16-bit mono WAV.
    """
    data = audio if isinstance(audio, bytes) else Path(audio).read_bytes()
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise ValueError("need a 16-bit mono WAV")
            rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a WAV file: {exc}") from None
    if rate == RATE:
        return pcm
    samples = memoryview(pcm).cast("h")
    count = len(samples) * RATE // rate
    step = rate / RATE
    out = memoryview(bytearray(count * 2)).cast("h")
    last = len(samples) - 1
    for i in range(count):
        position = i * step
        index = int(position)
        low, high = samples[index], samples[min(index + 1, last)]
        out[i] = round(low + (high - low) * (position - index))
    return out.tobytes()


def wav24k(pcm: bytes) -> bytes:
    """pcm16 at 24 kHz as a WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm)
    return buffer.getvalue()


class AgentConversation:
    """One conversation with the voice agent (``ws://console/v1/realtime``); close it, or use ``with``.

    Session settings (each optional; the console's ``agent:`` config fills the rest): ``instructions``,
    ``voice`` (a TTS style), ``language`` (of the person; None detects it per turn),
    ``max_output_tokens``, ``temperature``. Server voice activity detection ends each turn.

    Raises:
        ServiceUnavailableError: the console cannot be reached, or refused the conversation (too many).
        AuthenticationError: the API key was refused.
        InvalidRequestError: a session setting was refused (e.g. an unknown voice).
    """

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 120.0, **session: Any) -> None:
        from websockets.exceptions import InvalidHandshake
        from websockets.sync.client import connect

        self.url = url
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            self._ws = connect(url, additional_headers=headers, max_size=None, open_timeout=30, ping_interval=None)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise ServiceUnavailableError(f"cannot open {url}: {exc}") from None
        try:
            self.session: dict[str, Any] = self._until("session.created")["session"]
            update = _session_update(**session)
            if update:
                self._send({"type": "session.update", "session": update})
                self.session = self._until("session.updated")["session"]
        except BaseException:
            self.close()
            raise

    def say(self, audio: str | Path | bytes, *, speed: float = 1.0, silence_s: float = 1.5) -> AgentReply:
        """One spoken turn: play ``audio`` (a 16-bit mono WAV, path or bytes) and wait for the reply.

        Args:
            speed: times real time; 0 sends as fast as the connection takes it.
            silence_s: silence sent after the speech, so that the agent hears the turn end.

        Raises:
            StreamError: the connection closed, or no reply came within ``timeout`` seconds.
            SuiteError: an error the agent reported for this turn (e.g. the LLM could not be reached).
        """
        pcm = pcm24k(audio)
        step = int(RATE * CHUNK_S) * 2
        pieces = [pcm[i : i + step] for i in range(0, len(pcm), step)] + [bytes(step)] * round(silence_s / CHUNK_S)
        speech_end = [time.monotonic()]
        spoken = threading.Event()  # the last piece of speech was sent (the silence may still be going out)

        def feed() -> None:
            started = time.monotonic()
            try:
                for index, piece in enumerate(pieces):
                    self._send({"type": "input_audio_buffer.append", "audio": base64.b64encode(piece).decode("ascii")})
                    if (index + 1) * step >= len(pcm) and not spoken.is_set():
                        speech_end[0] = time.monotonic()
                        spoken.set()
                    if speed > 0:
                        time.sleep(max(0.0, started + (index + 1) * CHUNK_S / speed - time.monotonic()))
            except SuiteError:
                pass  # the reader sees the closed connection
            finally:
                spoken.set()

        feeder = threading.Thread(target=feed, name="agent-feed", daemon=True)
        feeder.start()
        try:
            return self._collect(spoken, speech_end)
        finally:
            feeder.join()  # the silence goes out whole: the next turn starts after it

    def ask(self, text: str) -> AgentReply:
        """One typed turn: ``text`` as the person's message, then the reply (spoken, as for :meth:`say`)."""
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        self._send({"type": "conversation.item.create", "item": item})
        self._send({"type": "response.create"})
        done = threading.Event()
        done.set()
        reply = self._collect(done, [time.monotonic()])
        reply.heard = text
        return reply

    def _collect(self, spoken: threading.Event, speech_end: list[float]) -> AgentReply:
        """Read events until a reply ends after all the speech was sent (replies cut by the person's own
        speech, when a pause made two turns of one, are dropped: the last one answers the whole)."""
        heard: list[str] = []
        reply, audio, events = "", bytearray(), []
        first_audio: float | None = None
        response_id = None
        deadline = time.monotonic() + self.timeout
        while True:
            event = self._next(deadline)
            kind = event.get("type", "")
            if kind not in AUDIO_DELTAS or not events or events[-1] != kind:
                events.append(kind)
            if kind == "conversation.item.input_audio_transcription.completed" and event.get("transcript"):
                heard.append(event["transcript"].strip())
            elif kind == "response.created":
                response_id, reply, audio, first_audio = event["response"]["id"], "", bytearray(), None
            elif kind in AUDIO_DELTAS and event.get("response_id") == response_id:
                audio += base64.b64decode(event["delta"])
                first_audio = first_audio or time.monotonic()
            elif kind in TEXT_DELTAS and event.get("response_id") == response_id:
                reply += event["delta"]
            elif kind == "error":
                detail = event.get("error") or {}
                if detail.get("code") not in ("llm_failed", "tts_failed"):  # these fail the reply: raised below
                    raise _error(detail)
            elif kind == "response.done" and event["response"]["id"] == response_id:
                response = event["response"]
                if response["status"] == "failed":
                    raise _error(((response.get("status_details") or {}).get("error")) or {})
                if response["status"] != "cancelled" and spoken.is_set():
                    end = speech_end[0]
                    return AgentReply(
                        " ".join(heard),
                        reply.strip(),
                        wav24k(bytes(audio)) if audio else b"",
                        response["status"],
                        None if first_audio is None else first_audio - end,
                        time.monotonic() - end,
                        events,
                    )

    def _next(self, deadline: float) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed

        try:
            message = self._ws.recv(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise StreamError(f"no reply from {self.url} within {self.timeout:.0f} s") from None
        except ConnectionClosed as exc:
            raise StreamError(f"the agent closed the conversation ({exc})") from None
        event = json.loads(message)
        if "type" not in event and "error" in event:  # refused: an error, then the close
            raise _error(event["error"])
        return event

    def _until(self, kind: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            event = self._next(deadline)
            if event.get("type") == kind:
                return event
            if event.get("type") == "error":
                raise _error(event.get("error") or {})

    def _send(self, event: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self._ws.send(json.dumps(event))
        except ConnectionClosed as exc:
            raise StreamError(f"the agent closed the conversation ({exc})") from None

    def close(self) -> None:
        """End the conversation (the agent forgets it)."""
        self._ws.close()

    def __enter__(self) -> AgentConversation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _session_update(
    instructions: str | None = None,
    voice: str | None = None,
    language: str | None = None,
    max_output_tokens: int | None = None,
    temperature: float | None = None,
) -> dict[str, Any]:
    """The ``session.update`` for the given settings (GA shape); empty when none is given."""
    session: dict[str, Any] = {}
    if instructions is not None:
        session["instructions"] = instructions
    if max_output_tokens is not None:
        session["max_output_tokens"] = max_output_tokens
    if temperature is not None:
        session["temperature"] = temperature
    if language is not None:
        session.setdefault("audio", {})["input"] = {"transcription": {"language": language}}
    if voice is not None:
        session.setdefault("audio", {})["output"] = {"voice": voice}
    return {"type": "realtime", **session} if session else {}


def _error(detail: dict[str, Any]) -> SuiteError:
    """The exception for an ``error`` event's (or a failed reply's) error object."""
    if detail.get("code") in _UPSTREAM_CODES:
        kind: type[SuiteError] = UpstreamFailureError
    else:
        kind = ERROR_BY_TYPE.get(detail.get("type"), StreamError)
    return kind(str(detail.get("message") or "the agent failed"), code=detail.get("code"))
