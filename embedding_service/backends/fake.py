"""A tiny deterministic embedding backend for fast route and error tests (``backend: fake``); no weights.

A text's vector is its words hashed into 64 buckets (with the configured prompt prepended),
L2-normalised: texts sharing words are similar, and the same text always gives the same vector.
It never replaces the real models in behaviour tests.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np

from embedding_service.backends import EmbeddingOptions, Encoded

DIM = 64


class FakeEmbeddingBackend:
    """Bag of hashed words."""

    dim = DIM

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        spec = EmbeddingOptions.model_validate(options)
        self._prompts = {"query": spec.query_prompt, "document": spec.document_prompt}

    def encode(self, texts: list[str], input_type: Literal["query", "document"]) -> Encoded:
        """One normalised vector per text; a token per word, plus two (like [CLS] and [SEP])."""
        vectors = np.zeros((len(texts), DIM), np.float32)
        counts = []
        for row, text in enumerate(texts):
            words = (self._prompts[input_type] + text).lower().split() or [""]
            for word in words:
                vectors[
                    row, int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % DIM
                ] += 1
            counts.append(len(words) + 2)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return Encoded(vectors, counts)

    def close(self) -> None:
        """Nothing to free."""
