"""Thin HTTP clients for the suite's services (embedding, ASR, LLM; TTS follows with its service).

    from core import Core
    with Core() as suite:
        print(suite.llm.chat("用一句话介绍你自己"))
        print(suite.asr.transcribe("question.wav"))
        print(suite.embedding.rerank("如何重置我的密码", ["这家餐厅的菜很好吃", "忘记密码怎么办"]))

Base URLs default to the local ports and can be set by argument or by ``EMBEDDING_URL``, ``ASR_URL``,
``LLM_URL``; ``SUITE_API_KEY`` (or ``api_key=``) sends a bearer token. Connection errors are retried,
and so are 429/503 answers, after the ``Retry-After`` the service asks for. Every failure raises a
:class:`SuiteError` subclass carrying the status, the service's message and the request id.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ASRClient",
    "BadRequest",
    "Core",
    "EmbeddingClient",
    "LLMClient",
    "NotFound",
    "Overloaded",
    "ServiceUnavailable",
    "SuiteError",
    "UpstreamFailed",
]


class SuiteError(Exception):
    """Any failure talking to a service."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        where = f" (HTTP {self.status}, request id {self.request_id})" if self.status else ""
        return f"{self.message}{where}"


class BadRequest(SuiteError):
    """The service refused the input (400, 401, 413, ...)."""


class NotFound(SuiteError):
    """Unknown model or route (404)."""


class Overloaded(SuiteError):
    """Still 429 after the retries."""


class ServiceUnavailable(SuiteError):
    """The service is down, loading, or timed out (connection errors, 503)."""


class UpstreamFailed(SuiteError):
    """The service's upstream failed (502/504)."""


def _error_for(response: httpx.Response) -> SuiteError:
    try:
        detail = response.json().get("error", {})
        message, code = str(detail.get("message", response.text)), detail.get("code")
    except (ValueError, AttributeError):
        message, code = response.text[:500] or response.reason_phrase, None
    kind = {404: NotFound, 429: Overloaded, 502: UpstreamFailed, 503: ServiceUnavailable, 504: UpstreamFailed}.get(
        response.status_code, BadRequest if response.status_code < 500 else SuiteError
    )
    return kind(message, status=response.status_code, code=code, request_id=response.headers.get("X-Request-ID"))


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
        """``GET /health`` (503 while loading raises :class:`ServiceUnavailable`)."""
        return self._request("GET", "/health").json()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TimeoutException as exc:
                raise ServiceUnavailable(f"{self._http.base_url} timed out: {exc}") from None
            except httpx.TransportError as exc:
                raise ServiceUnavailable(f"cannot reach {self._http.base_url}: {exc}") from None
            if response.status_code in (429, 503) and attempt < self.retries:
                time.sleep(min(float(response.headers.get("Retry-After", 1)), 30.0))
                continue
            if response.status_code >= 400:
                raise _error_for(response)
            return response
        raise AssertionError("unreachable")

    def _lines(self, path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """POST and yield the NDJSON lines; an ``{"event": "error"}`` line raises."""
        try:
            with self._http.stream("POST", path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_for(response)
                for line in response.iter_lines():
                    if not line:
                        continue
                    item = json.loads(line)
                    if item.get("event") == "error":
                        raise SuiteError(
                            item.get("message", "stream failed"),
                            code=item.get("code"),
                            request_id=response.headers.get("X-Request-ID"),
                        )
                    yield item
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"stream from {self._http.base_url} broke: {exc}") from None


def _audio(audio: str | Path | bytes) -> tuple[str, bytes]:
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

    def transcribe(self, audio: str | Path | bytes, language: str | None = None, **fields: str) -> str:
        """The text of an audio file (path or bytes); ``transcribe_detail`` gives segments too."""
        return self.transcribe_detail(audio, language, **fields)["text"]

    def transcribe_detail(
        self, audio: str | Path | bytes, language: str | None = None, **fields: str
    ) -> dict[str, Any]:
        """``{"text", "language", "duration", "segments"}``."""
        data = {k: v for k, v in {"language": language, **fields}.items() if v is not None}
        return self._request("POST", "/asr", files={"file": _audio(audio)}, data=data).json()

    def transcribe_stream(self, audio: str | Path | bytes, language: str | None = None) -> Iterator[str]:
        """The text so far, once per decoded segment."""
        data = {"language": language} if language else {}
        for line in self._lines("/asr/stream", files={"file": _audio(audio)}, data=data):
            if "partial_text" in line:
                yield line["partial_text"]


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
        for line in self._lines("/api/chat/stream", json=self._body(messages, system, model, params)):
            if "delta" in line:
                yield line["delta"]


class Core:
    """All clients in one place; use as a context manager to close their pools."""

    def __init__(self, *, api_key: str | None = None, timeout: float = 120.0) -> None:
        self.embedding = EmbeddingClient(api_key=api_key, timeout=timeout)
        self.asr = ASRClient(api_key=api_key, timeout=timeout)
        self.llm = LLMClient(api_key=api_key, timeout=timeout)

    def __enter__(self) -> Core:
        return self

    def __exit__(self, *exc: object) -> None:
        for client in (self.embedding, self.asr, self.llm):
            client.close()

    def health(self) -> dict[str, dict[str, Any] | str]:
        """Each service's ``/health``, or the error that reaching it gave."""
        report: dict[str, dict[str, Any] | str] = {}
        for name, client in (("embedding", self.embedding), ("asr", self.asr), ("llm", self.llm)):
            try:
                report[name] = client.health()
            except SuiteError as exc:
                report[name] = str(exc)
        return report


def main(argv: list[str] | None = None) -> int:
    """``python core.py asr FILE | chat TEXT | embed TEXT | health``."""
    import argparse

    parser = argparse.ArgumentParser(prog="core.py", description="Call the suite's services.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("asr", help="transcribe an audio file").add_argument("file")
    chat = commands.add_parser("chat", help="ask the LLM (streams the answer)")
    chat.add_argument("text")
    chat.add_argument("--system")
    commands.add_parser("embed", help="print a text's vector length and first values").add_argument("text")
    commands.add_parser("health", help="every service's /health")
    args = parser.parse_args(argv)
    try:
        with Core() as suite:
            if args.command == "asr":
                print(suite.asr.transcribe(args.file))
            elif args.command == "chat":
                for piece in suite.llm.chat_stream(args.text, system=args.system):
                    print(piece, end="", flush=True)
                print()
            elif args.command == "embed":
                vector = suite.embedding.embed(args.text)
                print(len(vector), [round(x, 4) for x in vector[:5]])
            else:
                print(json.dumps(suite.health(), ensure_ascii=False, indent=2))
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
