"""The embedding engine: models by name, micro-batched encoding, similarity and rerank. No HTTP here.

>>> engine = EmbeddingEngine(EmbeddingSettings.load()); engine.start(background=False)
>>> engine.embed(["hello"]).vectors.shape
(1, 384)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from common.batching import MicroBatcher
from common.errors import BadRequest, ServiceUnavailable, model_not_found
from common.lifecycle import ModelEngine
from embedding_service.backends import BACKENDS, EmbeddingBackend
from embedding_service.settings import EmbeddingModelSettings, EmbeddingSettings, InputType

log = logging.getLogger("suite.embedding")

Item = tuple[str, InputType, int]
"""A text, its input type and its size for batching (see :func:`_sizes`)."""
Row = tuple[np.ndarray, int]
LENGTH_WINDOW = 16
"""Batches are picked from the oldest 16 batches' worth of queued texts: on 2,048 queued texts a window
of 512 ran MiniLM 5 % faster than one of 128 (less padding), and the oldest text still goes first."""


@dataclass(frozen=True)
class EmbeddingResult:
    """Vectors for the texts of one request, in request order."""

    model: str
    vectors: np.ndarray
    """(n, dim) float32, L2-normalised."""
    token_counts: list[int]

    @property
    def dim(self) -> int:
        """Vector length."""
        return int(self.vectors.shape[1])


@dataclass(frozen=True)
class RerankHit:
    """One candidate's place in a ranking."""

    index: int
    score: float


@dataclass
class ServedModel:
    """A loaded backend with its batcher."""

    name: str
    spec: EmbeddingModelSettings
    backend: EmbeddingBackend
    batcher: MicroBatcher[Item, Row] = field(repr=False)


class EmbeddingEngine(ModelEngine):
    """Serves every configured model; concurrent calls for one model share forward passes."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        super().__init__()
        self.settings = settings
        self._models: dict[str, ServedModel] = {}
        self._names: dict[str, str] = {}
        for name, spec in settings.models.items():
            self._names[name] = name
            self._names.update(dict.fromkeys(spec.aliases, name))

    def _load(self) -> None:
        batching = self.settings.batching
        for name, spec in self.settings.models.items():
            backend_class = BACKENDS.backend_class(spec.backend)
            # a backend that runs batches side by side gets the cores split between its batches
            workers = batching.workers if getattr(backend_class, "concurrent", False) else 1
            backend = backend_class(spec.backend_options(), max(1, self.settings.cpu_threads // workers))
            batcher: MicroBatcher[Item, Row] = MicroBatcher(
                lambda items, backend=backend: _encode_items(backend, items),
                name=name,
                max_batch_size=batching.max_batch_size,
                max_wait_s=batching.max_wait_ms / 1000,
                max_queue=batching.max_queue,
                sort_key=_size,
                length_window=LENGTH_WINDOW,
                observer=self,
                workers=workers,
            )
            self._models[name] = ServedModel(name, spec, backend, batcher)
            log.info("loaded %s (%s, dim %d)", name, spec.backend, backend.dim)

    @property
    def model_names(self) -> list[str]:
        """Served model names (without aliases), in config order."""
        return list(self.settings.models)

    def served_models(self) -> dict[str, list[str]]:
        """Every served model with its aliases."""
        return {name: list(spec.aliases) for name, spec in self.settings.models.items()}

    def queue_depth(self, name: str) -> int:
        """Texts waiting for a model (0 before it is loaded)."""
        served = self._models.get(name)
        return served.batcher.depth() if served else 0

    def queue_depths(self) -> dict[str, Callable[[], int]]:
        """One queue per served model."""
        return {name: partial(self.queue_depth, name) for name in self.model_names}

    def resolve(self, name: str | None) -> ServedModel:
        """Find a served model by name or alias; None means the default.

        Raises:
            NotFound: no such model (the message lists the served ones).
            ServiceUnavailable: models are not loaded yet.
        """
        real = self._names.get(name or self.settings.default_model)
        if real is None:
            raise model_not_found(name, sorted(self._names))
        self.ensure_ready()
        return self._models[real]

    def embed(
        self,
        texts: list[str],
        *,
        model: str | None = None,
        input_type: InputType | None = None,
        dimensions: int | None = None,
        field: str = "input",
    ) -> EmbeddingResult:
        """Embed texts with one model.

        Args:
            texts: one or more non-blank strings.
            model: model name or alias; None for the default.
            input_type: ``query`` or ``document``; None for the model's default.
            dimensions: keep the first N components and re-normalise (Matryoshka style).
            field: request field name used in error messages.

        Raises:
            BadRequest: empty/blank/too many/too long texts, or bad ``dimensions``.
            NotFound: unknown model.
            Overloaded: the model's queue is full.
            ServiceUnavailable: not loaded, shutting down, or timed out in the queue.
        """
        served = self.resolve(model)
        prepared = self._check_texts(texts, field)
        if dimensions is not None and not 1 <= dimensions <= served.backend.dim:
            raise BadRequest(f"dimensions must be between 1 and {served.backend.dim}", param="dimensions")
        kind = input_type or served.spec.default_input_type
        try:
            items = list(zip(prepared, [kind] * len(prepared), _sizes(served.backend, prepared, kind), strict=True))
            rows = served.batcher.run(items, timeout=self.settings.batching.request_timeout_s)
        except TimeoutError as exc:
            raise ServiceUnavailable(str(exc), code="timeout") from None
        vectors = np.stack([vector for vector, _ in rows])
        if dimensions is not None:
            vectors = _truncate(vectors, dimensions)
        return EmbeddingResult(served.name, vectors, [count for _, count in rows])

    def similarity(self, a: str, b: str, *, model: str | None = None) -> tuple[str, float]:
        """Cosine similarity of two texts embedded alike. Returns (model name, score)."""
        result = self.embed([a, b], model=model, field="a/b")
        return result.model, float(result.vectors[0] @ result.vectors[1])

    def rerank(
        self, query: str, documents: list[str], *, model: str | None = None, top_n: int | None = None
    ) -> tuple[str, list[RerankHit], int]:
        """Rank documents by cosine similarity to the query (query and documents prompted as such).

        Returns:
            (model name, hits best first, tokens used).
        """
        q = self.embed([query], model=model, input_type="query", field="query")
        docs = self.embed(documents, model=q.model, input_type="document", field="documents")
        scores = docs.vectors @ q.vectors[0]
        order = np.argsort(-scores, kind="stable")
        hits = [RerankHit(int(i), float(scores[i])) for i in order[: top_n or len(order)]]
        return q.model, hits, sum(q.token_counts) + sum(docs.token_counts)

    def describe(self) -> dict[str, Any]:
        """Served models, default and aliases for ``/health``."""
        aliases = {alias: real for alias, real in self._names.items() if alias != real}
        return {"models": self.model_names, "default_model": self.settings.default_model, "aliases": aliases}

    def workers_alive(self) -> bool:
        """True while every model's batch worker runs."""
        return all(served.batcher.alive for served in self._models.values())

    def close(self) -> None:
        """Stop the batchers and free the models."""
        super().close()
        for served in self._models.values():
            served.batcher.close()
            served.backend.close()
        self._models.clear()

    def _check_texts(self, texts: list[str], field: str) -> list[str]:
        limits = self.settings.limits
        if not texts:
            raise BadRequest(f"{field} must contain at least one text", param=field)
        if len(texts) > limits.max_texts:
            raise BadRequest(
                f"{field} has {len(texts)} texts; the limit is {limits.max_texts}", param=field, code="too_many_texts"
            )
        prepared = []
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise BadRequest(f"{field}[{i}] must be a non-blank string", param=field)
            if len(text) > limits.max_chars:
                if limits.on_too_long == "error":
                    raise BadRequest(
                        f"{field}[{i}] has {len(text)} characters; the limit is {limits.max_chars}",
                        param=field,
                        code="text_too_long",
                    )
                text = text[: limits.max_chars]
            prepared.append(text)
        return prepared


def _encode_items(backend: EmbeddingBackend, items: list[Item]) -> list[Row]:
    """Batch function: group by input type (prompts differ), encode, restore order."""
    rows: list[Row | None] = [None] * len(items)
    for kind in ("query", "document"):
        positions = [i for i, (_, k, _) in enumerate(items) if k == kind]
        if not positions:
            continue
        encoded = backend.encode([items[i][0] for i in positions], kind)  # type: ignore[arg-type]
        for row, i in enumerate(positions):
            rows[i] = (encoded.vectors[row], encoded.token_counts[row])
    return rows  # type: ignore[return-value]


def _sizes(backend: EmbeddingBackend, texts: list[str], kind: InputType) -> list[int]:
    """Each text's size for grouping batches by length: its tokens when the backend can count them
    (counted in the caller's thread, once), else its UTF-8 bytes, a rough guess across scripts."""
    count_tokens = getattr(backend, "count_tokens", None)
    if count_tokens is not None:
        return count_tokens(texts, kind)
    return [len(t.encode("utf-8", "surrogatepass")) for t in texts]


def _size(item: Item) -> int:
    """Batching key."""
    return item[2]


def _truncate(vectors: np.ndarray, dimensions: int) -> np.ndarray:
    cut = vectors[:, :dimensions]
    norms = np.linalg.norm(cut, axis=1, keepdims=True)
    return (cut / np.where(norms == 0, 1, norms)).astype(np.float32)
