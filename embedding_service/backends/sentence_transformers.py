"""sentence-transformers backend: MiniLM offline, Qwen3-Embedding-4B in production (local dirs only)."""

from __future__ import annotations

import os
from typing import Any, Literal

from common.bundled import resolve_model_path
from embedding_service.backends import EmbeddingOptions, Encoded


class SentenceTransformerBackend:
    """A SentenceTransformer loaded from a local directory, never from a hub."""

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        spec = EmbeddingOptions.model_validate(options)
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
        """Embed with the model's prompt for ``input_type``; vectors are L2-normalised.

        Runs the model's own modules (tokenizer, transformer, its pooling) on one batch, like
        ``SentenceTransformer.encode`` without its per-call sorting and batching, and reads the
        token counts from the same tokenisation.
        """
        prompt = self._prompts[input_type] or None
        with self._torch.inference_mode():
            features = self._model.preprocess(texts, prompt=prompt)
            features = {k: v.to(self._model.device) if hasattr(v, "to") else v for k, v in features.items()}
            embeddings = self._model(features)["sentence_embedding"]
            # plain transformers dirs don't normalise by themselves
            embeddings = self._torch.nn.functional.normalize(embeddings.float(), p=2, dim=1)
            counts = features["attention_mask"].sum(dim=1).tolist()
        return Encoded(embeddings.cpu().numpy(), [int(c) for c in counts])

    def close(self) -> None:
        """Drop the model."""
        del self._model
