"""Thin HTTP clients for the suite's services: embedding, ASR, LLM, TTS, and a voice round trip.

    from core import Core
    with Core() as suite:
        print(suite.llm.chat("用一句话介绍你自己"))
        print(suite.asr.transcribe("question.wav"))
        suite.tts.synthesize("你好，world", style="style2", save_to="hello.wav")
        print(suite.embedding.rerank("如何重置我的密码", ["这家餐厅的菜很好吃", "忘记密码怎么办"]))
        reply = suite.voice_chat("question.wav")   # heard text, reply text, reply audio (WAV)
        with suite.agent() as talk:                # a spoken conversation with the console's voice agent
            print(talk.say("question.wav").reply)

Live transcription (``suite.asr.live()``, ``suite.asr.transcribe_live("question.wav")``, ``core.py live
FILE``) and the voice agent (``suite.agent()``, ``core.py agent FILE``, see :mod:`core_agent`) talk
WebSocket and need the ``websockets`` package; everything else needs only httpx.

Base URLs default to the local ports and can be set by argument or by ``EMBEDDING_URL``, ``ASR_URL``,
``LLM_URL``, ``TTS_URL``, ``CONSOLE_URL``; ``SUITE_API_KEY`` (or ``api_key=``) sends a bearer token.

What is retried, ``retries`` times (default 3): a connection that cannot be opened (at once), and a 429 or 503
answer (after the ``Retry-After`` the service sends, at most 30 s). Streamed calls are retried the same way,
but only before the first byte of the body: once a stream has started, a failure raises. Nothing else is
retried (timeouts, other statuses, a broken stream). Every failure raises a :class:`SuiteError` subclass
(one per kind of failure, in ``core_errors.py``) carrying the status, the service's message and error code,
and the request id.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from core_agent import AgentConversation, AgentReply
from core_errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    StreamError,
    SuiteError,
    UpstreamFailureError,
    error_for,
)
from core_live import LiveTranscription

__all__ = [  # noqa: RUF022 (grouped: clients, results, errors)
    "ASRClient", "Core", "EmbeddingClient", "LLMClient", "LiveTranscription", "TTSClient", "VoiceEvent", "VoiceReply",
    "AgentConversation", "AgentReply",
    "AuthenticationError", "InvalidRequestError", "NotFoundError", "RateLimitError", "ServerError",
    "ServiceUnavailableError", "StreamError", "SuiteError", "UpstreamFailureError",
]  # fmt: skip
RETRIED_STATUSES = (429, 503)
AudioSource = str | Path | bytes
"""An audio file's path, or its bytes."""


def _retry_delay(response: httpx.Response) -> float:
    """Seconds to wait before retrying a 429/503: the service's ``Retry-After`` (1 s if absent), at most 30."""
    return min(float(response.headers.get("Retry-After", 1)), 30.0)


class _Client:
    """Shared plumbing: base URL, key, pooled connections, retries, error mapping."""

    env_var = ""
    default_url = ""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = base_url or os.environ.get(self.env_var) or self.default_url
        key = api_key or os.environ.get("SUITE_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.retries = retries
        self._http = httpx.Client(
            base_url=url, headers=headers, timeout=timeout, transport=transport or httpx.HTTPTransport(retries=retries)
        )

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def health(self) -> dict[str, Any]:
        """``GET /health``; while loading (503 after the retries) raises :class:`ServiceUnavailableError`."""
        return self._request("GET", "/health").json()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; 429/503 are retried after ``Retry-After``, other errors raise their type."""
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TimeoutException as exc:
                raise ServiceUnavailableError(f"{self._http.base_url} timed out: {exc}") from None
            except httpx.TransportError as exc:
                raise ServiceUnavailableError(f"cannot reach {self._http.base_url}: {exc}") from None
            if response.status_code in RETRIED_STATUSES and attempt < self.retries:
                time.sleep(_retry_delay(response))
                continue
            if response.status_code >= 400:
                raise error_for(response)
            return response
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _stream(self, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """POST with a streamed answer. A 429/503 (known before the first byte) is retried like :meth:`_request`;
        another error status raises its type; a broken connection, also midway, :class:`ServiceUnavailableError`."""
        try:
            for attempt in range(self.retries + 1):
                with self._http.stream("POST", path, **kwargs) as response:
                    if response.status_code in RETRIED_STATUSES and attempt < self.retries:
                        response.read()
                        time.sleep(_retry_delay(response))
                        continue
                    if response.status_code >= 400:
                        response.read()
                        raise error_for(response)
                    yield response
                    return
        except httpx.TransportError as exc:
            raise ServiceUnavailableError(f"stream from {self._http.base_url} broke: {exc}") from None

    def _bytes(self, path: str, **kwargs: Any) -> Iterator[bytes]:
        """POST and yield the binary body as it arrives."""
        with self._stream(path, **kwargs) as response:
            yield from response.iter_bytes()

    def _lines(self, path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """POST and yield the NDJSON lines; an ``{"event": "error"}`` line raises."""
        with self._stream(path, **kwargs) as response:
            for line in response.iter_lines():
                if not line:
                    continue
                item = json.loads(line)
                if item.get("event") == "error":
                    raise StreamError(
                        item.get("message", "stream failed"),
                        code=item.get("code"),
                        request_id=response.headers.get("X-Request-ID"),
                    )
                yield item


def _audio(audio: AudioSource) -> tuple[str, bytes]:
    if isinstance(audio, bytes):
        return "audio.wav", audio
    path = Path(audio)
    return path.name, path.read_bytes()


class EmbeddingClient(_Client):
    """The embedding service (port 7202)."""

    env_var = "EMBEDDING_URL"
    default_url = "http://127.0.0.1:7202"

    def embed(self, texts: str | list[str], model: str | None = None) -> list[float] | list[list[float]]:
        """One vector for a string, a list of vectors for a list."""
        many = not isinstance(texts, str)
        body = self._request(
            "POST", f"/{model or 'Qwen3-Embedding-4B'}", json={"texts": list(texts) if many else [texts]}
        ).json()
        return body["embeddings"] if many else body["embeddings"][0]

    def similarity(self, a: str, b: str, model: str | None = None) -> float:
        """Cosine similarity in [-1, 1]."""
        return self._request("POST", "/similarity", json={"a": a, "b": b, "model": model}).json()["score"]

    def rerank(
        self, query: str, candidates: list[str], model: str | None = None, top_n: int | None = None
    ) -> list[dict[str, Any]]:
        """``[{"index", "text", "score"}]``, best first."""
        body = {"query": query, "candidates": candidates, "model": model, "top_n": top_n}
        return self._request("POST", "/rerank", json=body).json()["results"]


class ASRClient(_Client):
    """The ASR service (port 7205)."""

    env_var = "ASR_URL"
    default_url = "http://127.0.0.1:7205"

    def transcribe(self, audio: AudioSource, language: str | None = None, **fields: str) -> str:
        """The text of an audio file (path or bytes); ``transcribe_detail`` gives segments too."""
        return self.transcribe_detail(audio, language, **fields)["text"]

    def transcribe_detail(self, audio: AudioSource, language: str | None = None, **fields: str) -> dict[str, Any]:
        """``{"text", "language", "duration", "segments"}``."""
        data = {k: v for k, v in {"language": language, **fields}.items() if v is not None}
        return self._request("POST", "/asr", files={"file": _audio(audio)}, data=data).json()

    def transcribe_stream(self, audio: AudioSource, language: str | None = None) -> Iterator[str]:
        """The text so far, once per decoded segment."""
        data = {"language": language} if language else {}
        for line in self._lines("/asr/stream", files={"file": _audio(audio)}, data=data):
            if "partial_text" in line:
                yield line["partial_text"]

    def live(self, language: str | None = None, sample_rate: int = 16000) -> LiveTranscription:
        """Open a live session on ``/asr/live`` (close it, or use ``with``); it resumes on another replica when
        the one serving it goes away or dies (see :mod:`core_live`)."""
        query = urlencode({"language": language or "auto", "sample_rate": sample_rate})
        url = str(self._http.base_url).rstrip("/").replace("http", "ws", 1) + f"/asr/live?{query}"
        auth = self._http.headers.get("Authorization")
        return LiveTranscription(url, {"Authorization": auth} if auth else {}, sample_rate)

    def transcribe_live(
        self, wav_path: str | Path, language: str | None = None, speed: float = 1.0
    ) -> Iterator[dict[str, Any]]:
        """Stream a 16-bit mono WAV file as if spoken now (``speed`` x real time); yield the live events."""
        with wave.open(str(wav_path)) as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise ValueError(f"{wav_path}: need 16-bit mono WAV")
            rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
        with self.live(language, rate) as session:

            def feed() -> None:
                step, started = rate // 10 * 2, time.monotonic()
                with contextlib.suppress(Exception):  # a closed session is reported by the iterator
                    for index, position in enumerate(range(0, len(pcm), step)):
                        time.sleep(max(0.0, started + index * 0.1 / speed - time.monotonic()))
                        session.send(pcm[position : position + step])
                    session.end()

            threading.Thread(target=feed, daemon=True).start()
            yield from session


class LLMClient(_Client):
    """The LLM service (port 7207)."""

    env_var = "LLM_URL"
    default_url = "http://127.0.0.1:7207"

    @staticmethod
    def _body(
        messages: str | list[dict[str, Any]], system: str | None, model: str | None, params: dict[str, Any]
    ) -> dict[str, Any]:
        turns = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
        if system is not None:
            turns.insert(0, {"role": "system", "content": system})
        return {"messages": turns, **({"model": model} if model else {}), **params}

    def chat(
        self, messages: str | list[dict[str, Any]], system: str | None = None, model: str | None = None, **params: Any
    ) -> str:
        """The answer's text. ``params``: temperature, top_p, max_tokens, stop, seed."""
        return self._request("POST", "/api/chat", json=self._body(messages, system, model, params)).json()["content"]

    def chat_stream(
        self, messages: str | list[dict[str, Any]], system: str | None = None, model: str | None = None, **params: Any
    ) -> Iterator[str]:
        """The answer's text pieces as they are generated."""
        for line in self.chat_stream_lines(messages, system, model, **params):
            if "delta" in line:
                yield line["delta"]

    def chat_stream_lines(
        self, messages: str | list[dict[str, Any]], system: str | None = None, model: str | None = None, **params: Any
    ) -> Iterator[dict[str, Any]]:
        """The stream's lines: ``{"delta"}`` per piece, then ``{"event": "done", "finish_reason", "usage"}``."""
        yield from self._lines("/api/chat/stream", json=self._body(messages, system, model, params))


WAV_HEADER_BYTES = 44


def wav_file(pcm: bytes, sample_rate: int) -> bytes:
    """A mono 16-bit WAV around raw PCM."""
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, 1,
                         sample_rate, sample_rate * 2, 2, 16, b"data", len(pcm))  # fmt: skip
    return header + pcm


def wav_rate(wav: bytes) -> int:
    """The sample rate in a WAV header."""
    return struct.unpack_from("<I", wav, 24)[0]


class TTSClient(_Client):
    """The TTS service (port 7206)."""

    env_var = "TTS_URL"
    default_url = "http://127.0.0.1:7206"

    @staticmethod
    def _form(text: str, style: str | None, prompt_audio: AudioSource | None, params: dict[str, Any]) -> dict[str, Any]:
        fields = {"text": text, "style": style, **params}
        form: dict[str, Any] = {"data": {k: str(v) for k, v in fields.items() if v is not None}}
        if prompt_audio is not None:
            form["files"] = {"prompt_audio": _audio(prompt_audio)}
        else:  # multipart even without a file, as the seed's curl calls send it
            form["files"] = {"text": (None, form["data"].pop("text"))}
        return form

    def synthesize(
        self, text: str, style: str | None = None, prompt_audio: AudioSource | None = None,
        save_to: str | Path | None = None, **params: float | None,
    ) -> bytes:  # fmt: skip
        """WAV bytes for ``text`` (also written to ``save_to``). ``params``: ``temperature``, ``top_p``.

        ``prompt_audio`` (a path or bytes) is a reference recording; it wins over ``style``.
        """
        wav = self._request("POST", "/synthesize", **self._form(text, style, prompt_audio, params)).content
        if save_to is not None:
            Path(save_to).write_bytes(wav)
        return wav

    def synthesize_stream(
        self, text: str, style: str | None = None, prompt_audio: AudioSource | None = None, **params: float | None
    ) -> Iterator[bytes]:
        """The WAV as it is made: a 44-byte header with "unknown length" sizes, then PCM per clause.

        Writing the chunks in order to a file gives a playable WAV.
        """
        yield from self._bytes("/synthesize/stream", **self._form(text, style, prompt_audio, params))

    def styles(self) -> dict[str, Any]:
        """``{"default", "styles": [{"name", "language", "description"}], "aliases"}``."""
        return self._request("GET", "/styles").json()


_CLAUSE_END = re.compile(r"[。！？；!?;…\n]|[，、：]|[,:](?=\D)|\.(?=\s)")  # not inside 1,000 or 10:30
MIN_CLAUSE_CHARS = 6


def split_ready_clauses(buffer: str, final: bool = False) -> tuple[list[str], str]:
    """Cut finished clauses off the front of streamed text: ``(clauses, rest)``.

    Sentence ends (``。！？；!?;…``, a period before a space, a newline) always end a clause; commas
    (``，、,：:``) only once the clause has ``MIN_CLAUSE_CHARS`` characters, so TTS never gets a
    two-character scrap. With ``final``, whatever is left is a clause too.
    """
    clauses: list[str] = []
    start = 0
    for match in _CLAUSE_END.finditer(buffer):
        piece = buffer[start : match.end()]
        if match.group() in "，、,：:" and len(piece.strip()) < MIN_CLAUSE_CHARS:
            continue
        if piece.strip():
            clauses.append(piece.strip())
        start = match.end()
    rest = buffer[start:]
    if final and rest.strip():
        clauses.append(rest.strip())
        rest = ""
    return clauses, rest


@dataclass(frozen=True)
class VoiceEvent:
    """One step of :meth:`Core.voice_chat_stream`."""

    kind: Literal["heard", "text", "audio"]
    text: str
    """The transcript (``heard``), a reply delta (``text``) or the clause the audio speaks (``audio``)."""
    audio: bytes = b""
    """For ``audio``: a complete WAV of this clause."""
    seconds: float = 0.0
    """Time since the round trip started."""


@dataclass
class VoiceReply:
    """A finished voice round trip."""

    heard: str
    reply: str
    audio: bytes
    """The whole reply as one WAV."""
    first_audio_s: float
    """When the first clause's audio was ready (seconds from the start)."""
    reply_s: float
    """When the last piece of reply text arrived."""
    total_s: float
    clauses: list[str] = field(default_factory=list)


class Core:
    """All clients in one place; use as a context manager to close their pools."""

    def __init__(
        self,
        *,
        embedding_url: str | None = None,
        asr_url: str | None = None,
        llm_url: str | None = None,
        tts_url: str | None = None,
        console_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.console_url = (console_url or os.environ.get("CONSOLE_URL") or "http://127.0.0.1:7200").rstrip("/")
        """The voice console, whose ``/v1/realtime`` is the voice agent (:meth:`agent`)."""
        self.api_key = api_key or os.environ.get("SUITE_API_KEY")
        self.timeout = timeout
        self.embedding = EmbeddingClient(embedding_url, api_key=api_key, timeout=timeout)
        self.asr = ASRClient(asr_url, api_key=api_key, timeout=timeout)
        self.llm = LLMClient(llm_url, api_key=api_key, timeout=timeout)
        self.tts = TTSClient(tts_url, api_key=api_key, timeout=timeout)

    def __enter__(self) -> Core:
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients().values():
            client.close()

    def _clients(self) -> dict[str, _Client]:
        return {"embedding": self.embedding, "asr": self.asr, "llm": self.llm, "tts": self.tts}

    def health(self) -> dict[str, dict[str, Any] | str]:
        """Each service's ``/health``, or the error that reaching it gave."""
        report: dict[str, dict[str, Any] | str] = {}
        for name, client in self._clients().items():
            try:
                report[name] = client.health()
            except SuiteError as exc:
                report[name] = str(exc)
        return report

    def agent(self, **session: Any) -> AgentConversation:
        """Open a spoken conversation with the voice agent (the console's ``/v1/realtime``); close it or use ``with``.

        ``session``: ``instructions``, ``voice``, ``language``, ``max_output_tokens``, ``temperature``
        (see :class:`core_agent.AgentConversation`). Each ``say(wav)`` is a turn; the agent keeps the history.
        """
        url = self.console_url.replace("http", "ws", 1) + "/v1/realtime"
        return AgentConversation(url, self.api_key, timeout=self.timeout, **session)

    def voice_chat_stream(
        self,
        audio: AudioSource,
        system: str | None = None,
        style: str | None = None,
        language: str | None = None,
        **chat_params: Any,
    ) -> Iterator[VoiceEvent]:
        """Hear a spoken question, stream the LLM's answer, and speak it clause by clause.

        Yields ``heard`` once, then ``text`` for every reply delta and ``audio`` (a WAV) for every
        finished clause, as soon as each exists: the first audio comes long before the reply ends.
        """
        started = time.perf_counter()
        heard = self.asr.transcribe(audio, language=language)
        yield VoiceEvent("heard", heard, seconds=time.perf_counter() - started)
        if not heard.strip():
            return
        buffer = ""
        for delta in self.llm.chat_stream(heard, system=system, **chat_params):
            yield VoiceEvent("text", delta, seconds=time.perf_counter() - started)
            clauses, buffer = split_ready_clauses(buffer + delta)
            yield from self._speak(clauses, style, started)
        yield from self._speak(split_ready_clauses(buffer, final=True)[0], style, started)

    def _speak(self, clauses: list[str], style: str | None, started: float) -> Iterator[VoiceEvent]:
        for clause in clauses:
            if any(char.isalnum() for char in clause):  # skip clauses of only symbols or emoji
                wav = self.tts.synthesize(clause, style=style)
                yield VoiceEvent("audio", clause, wav, seconds=time.perf_counter() - started)

    def voice_chat(
        self,
        audio: AudioSource,
        system: str | None = None,
        style: str | None = None,
        language: str | None = None,
        **chat_params: Any,
    ) -> VoiceReply:
        """:meth:`voice_chat_stream` collected: the heard text, the reply text and the reply as one WAV."""
        started = time.perf_counter()
        heard, reply, clauses = "", "", []
        pcm: list[bytes] = []
        rate, first_audio, reply_done = 24000, 0.0, 0.0
        for event in self.voice_chat_stream(audio, system, style, language, **chat_params):
            if event.kind == "heard":
                heard = event.text
            elif event.kind == "text":
                reply += event.text
                reply_done = event.seconds
            else:
                first_audio = first_audio or event.seconds
                rate = wav_rate(event.audio)
                pcm.append(event.audio[WAV_HEADER_BYTES:])
                clauses.append(event.text)
        total = time.perf_counter() - started
        return VoiceReply(heard, reply.strip(), wav_file(b"".join(pcm), rate), first_audio, reply_done, total, clauses)


if __name__ == "__main__":
    from core_cli import main

    raise SystemExit(main())
