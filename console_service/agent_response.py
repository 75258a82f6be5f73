"""One reply of the agent: the LLM's stream, spoken clause by clause by the TTS, as Realtime events.

Two threads per reply: this one reads the LLM and cuts clauses; a second synthesises them in order
while the LLM goes on. Every event goes through the session (:class:`ReplySink`), which drops it once
the reply has ended: a cancelled reply sends nothing after its ``response.done``.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from common.audio import resample
from console_service.agent_conversation import Item, Span, new_id
from console_service.agent_protocol import SAMPLE_RATE
from core import WAV_HEADER_BYTES, LLMClient, TTSClient, split_ready_clauses, wav_rate
from core_errors import SuiteError

log = logging.getLogger("suite.agent")
_SOFT_BREAKS = frozenset(
    "and but or so because that which who whose where when while if as than with for to of in on at by from".split()  # noqa: SIM905
)
FIRST_CLAUSE_WORDS = (3, 10)
"""A reply's first clause, when no punctuation comes first, ends before a linking word once it has the first
number of words, and at the second number anyway: the first audio need not wait for a whole long sentence."""


@dataclass(frozen=True)
class ReplyPlan:
    """How one reply is to be given."""

    audio: bool
    voice: str
    max_output_tokens: int
    temperature: float | None
    chunk_ms: int


class ReplySink(Protocol):
    """The session a reply reports to."""

    def emit_for(self, reply: Reply, kind: str, **fields: Any) -> bool:
        """Send one of the reply's events; False once the reply has ended (the caller stops)."""
        ...

    def end_reply(self, reply: Reply, status: str, details: dict[str, Any] | None = None) -> None:
        """Close the reply's item and send ``response.done`` (once; later calls do nothing)."""
        ...


class Reply:
    """A response in progress; :meth:`run` does the work on the calling thread."""

    def __init__(self, sink: ReplySink, plan: ReplyPlan, llm: LLMClient, tts: TTSClient) -> None:
        self.id = new_id("resp")
        self.item = Item(new_id("item"), "assistant", plan.audio, text="", status="in_progress")
        self.plan = plan
        self.ended = threading.Event()
        """Set by the session when ``response.done`` was sent: the threads stop."""
        self.usage: dict[str, Any] = {}
        self._sink = sink
        self._llm = llm
        self._tts = tts
        self._clauses: queue.Queue[str | None] = queue.Queue()
        self._speech_error: Exception | None = None
        self.timings: dict[str, float] = {}
        """When the first token, first clause and first audio came (monotonic seconds)."""

    def run(self, messages: list[dict[str, str]]) -> None:
        """Stream the answer to ``messages`` and speak it; ends the reply with its status."""
        plan = self.plan
        started = time.monotonic()
        speaker = threading.Thread(target=self._speak, name=f"{self.id}-tts", daemon=True) if plan.audio else None
        if speaker:
            speaker.start()
        status, details = "completed", None
        try:
            finish_reason = self._stream_text(plan, messages)
            if finish_reason == "length":
                status, details = "incomplete", {"type": "incomplete", "reason": "max_output_tokens"}
        except SuiteError as error:
            status, details = "failed", _failure("llm", error)
        finally:
            self._clauses.put(None)
        if speaker:
            speaker.join()
        if self._speech_error is not None and status != "failed":
            status, details = "failed", _failure("tts", self._speech_error)
        self._sink.end_reply(self, status, details)
        marks = ", ".join(f"{name} {at - started:.2f} s" for name, at in self.timings.items())
        log.info("reply %s %s: %s after the prompt was ready", self.id, status, marks or "nothing")

    def _stream_text(self, plan: ReplyPlan, messages: list[dict[str, str]]) -> str | None:
        """Read the LLM; text-only replies get their deltas, spoken ones their clauses queued."""
        buffer = ""
        finish_reason = None
        params: dict[str, Any] = {"max_tokens": plan.max_output_tokens}
        if plan.temperature is not None:
            params["temperature"] = plan.temperature
        lines = self._llm.chat_stream_lines(messages, **params)
        with contextlib.closing(lines):  # closing the stream stops the LLM's work
            for line in lines:
                if self.ended.is_set():
                    return None
                if "delta" in line:
                    if not plan.audio:
                        self.item.text = (self.item.text or "") + line["delta"]
                        self._emit("response.output_text.delta", delta=line["delta"])
                        continue
                    self.timings.setdefault("first token", time.monotonic())
                    clauses, buffer = split_ready_clauses(buffer + line["delta"])
                    if not clauses and "first clause" not in self.timings:
                        clauses, buffer = early_clause(buffer)
                    for clause in clauses:
                        self.timings.setdefault("first clause", time.monotonic())
                        self._clauses.put(clause)
                elif line.get("event") == "done":
                    finish_reason = line.get("finish_reason")
                    self.usage = line.get("usage") or {}
        for clause in split_ready_clauses(buffer, final=True)[0]:
            self._clauses.put(clause)
        return finish_reason

    def _speak(self) -> None:
        """Synthesise the queued clauses in order; each clause's words go out just before its audio."""
        chunk_bytes = SAMPLE_RATE * 2 * self.plan.chunk_ms // 1000
        while (clause := self._clauses.get()) is not None:
            if self.ended.is_set() or self._speech_error is not None:
                continue  # drain the queue; the LLM thread ends the reply
            if not any(c.isalnum() for c in clause):
                continue
            try:
                self._speak_clause(clause, chunk_bytes)
            except Exception as error:  # the reply fails with it; the LLM thread ends it
                self._speech_error = error

    def _speak_clause(self, clause: str, chunk_bytes: int) -> None:
        pcm = _Pcm()
        span: Span | None = None
        chunks = self._tts.synthesize_stream(clause, style=self.plan.voice)
        with contextlib.closing(chunks):
            for chunk in chunks:
                pcm.add(chunk)
                while len(pcm.ready) >= chunk_bytes or (pcm.ready and span is None):
                    if span is None:  # its words join the reply with its first audio, not before
                        span = self._begin_clause(clause)
                        if span is None:
                            return
                    piece, pcm.ready = pcm.ready[:chunk_bytes], pcm.ready[chunk_bytes:]
                    if not self._send_audio(span, piece):
                        return
        if pcm.ready and (span := span or self._begin_clause(clause)) is not None:
            self._send_audio(span, pcm.ready)

    def _begin_clause(self, clause: str) -> Span | None:
        item = self.item
        text = f"{' ' if item.text and not _cjk_edge(item.text, clause) else ''}{clause}"
        if not self._emit("response.output_audio_transcript.delta", delta=text):
            return None
        item.text = (item.text or "") + text
        item.spans.append(Span(clause, item.audio_ms, item.audio_ms))
        return item.spans[-1]

    def _send_audio(self, span: Span, pcm: bytes) -> bool:
        self.timings.setdefault("first audio", time.monotonic())
        span.end_ms += len(pcm) / 2 / SAMPLE_RATE * 1000
        return self._emit("response.output_audio.delta", delta=base64.b64encode(pcm).decode("ascii"))

    def _emit(self, kind: str, **fields: Any) -> bool:
        return self._sink.emit_for(self, kind, item_id=self.item.id, output_index=0, content_index=0, **fields)


def response_object(
    reply: Reply,
    conversation_id: str,
    beta: bool,
    status: str,
    details: dict[str, Any] | None = None,
    output: list[Item] | None = None,
) -> dict[str, Any]:
    """The ``response`` object of ``response.created`` and ``response.done``."""
    usage = reply.usage
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {
        "id": reply.id,
        "object": "realtime.response",
        "status": status,
        "status_details": details,
        "output": [item.describe(beta) for item in output or []],
        "conversation_id": conversation_id,
        ("modalities" if beta else "output_modalities"): ["audio"] if reply.plan.audio else ["text"],
        "max_output_tokens": reply.plan.max_output_tokens,
        "usage": {"total_tokens": prompt + completion, "input_tokens": prompt, "output_tokens": completion},
    }


def content_part(reply: Reply) -> dict[str, Any]:
    """The reply's content part as it stands."""
    if reply.plan.audio:
        return {"type": "audio", "transcript": reply.item.text or ""}
    return {"type": "text", "text": reply.item.text or ""}


class _Pcm:
    """A TTS WAV stream as pcm16 at :data:`SAMPLE_RATE`, whatever rate its header gives."""

    def __init__(self) -> None:
        self.ready = b""
        self._head = b""
        self._rate: int | None = None
        self._odd = b""

    def add(self, chunk: bytes) -> None:
        """Take the next bytes of the stream."""
        if self._rate is None:
            self._head += chunk
            if len(self._head) < WAV_HEADER_BYTES:
                return
            self._rate, chunk = wav_rate(self._head), self._head[WAV_HEADER_BYTES:]
        data = self._odd + chunk
        cut = len(data) // 2 * 2
        data, self._odd = data[:cut], data[cut:]
        if self._rate != SAMPLE_RATE and data:
            samples = resample(np.frombuffer(data, "<i2").astype(np.float32) / 32768, self._rate, SAMPLE_RATE)
            data = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        self.ready += data


def early_clause(buffer: str) -> tuple[list[str], str]:
    """Cut a first clause off unpunctuated English text at a soft break (see :data:`FIRST_CLAUSE_WORDS`).

    Returns ``([clause], rest)``, or ``([], buffer)`` when it is too early to cut.
    """
    if _cjk_edge("\u4e00", buffer[:1]) or not buffer[:1].isascii():
        return [], buffer
    words = buffer.split(" ")
    complete = [word for word in words[:-1] if word]  # the last word may still be growing
    fewest, most = FIRST_CLAUSE_WORDS
    for index in range(fewest, len(complete)):
        if complete[index].lower() in _SOFT_BREAKS or index >= most:
            head = " ".join(complete[:index])
            return [head], buffer[buffer.index(head) + len(head) :].lstrip(" ")
    return [], buffer


def _failure(service: str, error: Exception) -> dict[str, Any]:
    if isinstance(error, SuiteError):
        log.warning("reply failed in the %s service: %s", service, error)
        message = str(error)
    else:
        log.error("reply failed speaking", exc_info=error)
        message = "the reply failed; see the console's log"
    return {"type": "failed", "error": {"type": "server_error", "code": f"{service}_failed", "message": message}}


def _cjk_edge(before: str, after: str) -> bool:
    return bool(before) and bool(after) and ord(before[-1]) > 0x2E80 and ord(after[0]) > 0x2E80
