"""sentence-transformers backend: MiniLM offline, Qwen3-Embedding-4B in production (local dirs only)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

import numpy as np

from common.bundled import resolve_model_path
from embedding_service.backends import Encoded

if TYPE_CHECKING:
    from embedding_service.settings import EmbeddingModelSettings


class SentenceTransformerBackend:
    """A SentenceTransformer loaded from a local directory, never from a hub."""

    def __init__(self, spec: EmbeddingModelSettings, cpu_threads: int) -> None:
        if not spec.path:
            raise ValueError("sentence_transformers backend needs `path` (a local model directory)")
        path = resolve_model_path(spec.path)
        os.environ["HF_HUB_OFFLINE"] = "1"  # a missing file must fail here, not trigger a download
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(cpu_threads)
        self._torch = torch
        self._model = SentenceTransformer(str(path), device=spec.device, local_files_only=True)
        self._model.eval()
        if spec.max_seq_length is not None:
            # plain transformers dirs (no modules.json) would otherwise default to 512
            self._model.max_seq_length = spec.max_seq_length
        self._max_tokens = self._model.max_seq_length
        self._prompts = {"query": spec.query_prompt, "document": spec.document_prompt}
        self.dim = int(self._model.get_embedding_dimension())

    def encode(self, texts: list[str], input_type: Literal["query", "document"]) -> Encoded:
        """Embed with the model's prompt for ``input_type``; vectors are L2-normalised."""
        prompt = self._prompts[input_type]
        prompted = [prompt + t for t in texts] if prompt else texts
        with self._torch.inference_mode():
            vectors = self._model.encode(
                prompted,
                batch_size=len(prompted),
                normalize_embeddings=True,  # plain transformers dirs don't normalise by themselves
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        lengths = self._model.tokenizer(prompted, add_special_tokens=True, truncation=True,
                                        max_length=self._max_tokens)["input_ids"]
        return Encoded(np.asarray(vectors, dtype=np.float32), [len(ids) for ids in lengths])

    def close(self) -> None:
        """Drop the model."""
        del self._model
