"""The embedding engine on the real offline models (loaded once per session)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from common.errors import BadRequest, NotFound
from embedding_service.engine import EmbeddingEngine

E5 = "multilingual-e5-small"
MINILM = "all-MiniLM-L6-v2"


def test_chinese_ordering_with_the_multilingual_model(embedding_engine: EmbeddingEngine) -> None:
    model, hits, _ = embedding_engine.rerank("如何重置我的密码", ["这家餐厅的菜很好吃", "忘记密码怎么办"], model=E5)
    assert model == E5
    assert [h.index for h in hits] == [1, 0]
    assert hits[0].score > hits[1].score + 0.05


def test_cross_lingual_and_english_ordering(embedding_engine: EmbeddingEngine) -> None:
    _, hits, _ = embedding_engine.rerank(
        "how do I reset my password", ["今天天气很好", "忘记密码怎么办", "the cat sat on the mat"], model=E5
    )
    assert hits[0].index == 1
    _, hits, _ = embedding_engine.rerank(
        "python web framework", ["a recipe for apple pie", "Flask is a small Python web framework"], model=MINILM
    )
    assert hits[0].index == 1


@pytest.mark.parametrize("model", [E5, MINILM])
def test_vectors_are_normalised_and_deterministic(embedding_engine: EmbeddingEngine, model: str) -> None:
    first = embedding_engine.embed(["hello world", "python语言"], model=model)
    again = embedding_engine.embed(["hello world", "python语言"], model=model)
    assert first.vectors.shape == (2, 384) and first.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(first.vectors, again.vectors, atol=1e-6)
    assert all(n > 2 for n in first.token_counts)


@pytest.mark.parametrize("model", [E5, MINILM])
def test_batched_vectors_equal_lone_vectors(embedding_engine: EmbeddingEngine, model: str) -> None:
    texts = [f"sentence number {i} " + "word " * (i % 7) for i in range(48)]
    lone = np.stack([embedding_engine.embed([t], model=model).vectors[0] for t in texts])
    with ThreadPoolExecutor(16) as pool:
        together = np.stack(list(pool.map(lambda t: embedding_engine.embed([t], model=model).vectors[0], texts)))
    np.testing.assert_allclose(together, lone, atol=1e-5)
    batch = embedding_engine.embed(texts, model=model).vectors
    np.testing.assert_allclose(batch, lone, atol=1e-5)


def test_query_and_document_prompts_differ(embedding_engine: EmbeddingEngine) -> None:
    query = embedding_engine.embed(["python"], model=E5, input_type="query").vectors[0]
    document = embedding_engine.embed(["python"], model=E5, input_type="document").vectors[0]
    assert float(query @ document) < 0.999


def test_alias_and_default_model(embedding_engine: EmbeddingEngine) -> None:
    assert embedding_engine.embed(["x"], model="Qwen3-Embedding-4B").model == E5
    assert embedding_engine.embed(["x"]).model == embedding_engine.settings.default_model


def test_dimensions_truncate_and_renormalise(embedding_engine: EmbeddingEngine) -> None:
    full = embedding_engine.embed(["hello"], model=MINILM).vectors[0]
    short = embedding_engine.embed(["hello"], model=MINILM, dimensions=64).vectors[0]
    assert short.shape == (64,)
    np.testing.assert_allclose(short, full[:64] / np.linalg.norm(full[:64]), atol=1e-6)
    with pytest.raises(BadRequest, match="dimensions"):
        embedding_engine.embed(["hello"], model=MINILM, dimensions=385)


def test_bad_texts(embedding_engine: EmbeddingEngine) -> None:
    with pytest.raises(BadRequest, match="at least one"):
        embedding_engine.embed([])
    with pytest.raises(BadRequest, match=r"texts\[1\]"):
        embedding_engine.embed(["ok", "   "], field="texts")
    with pytest.raises(BadRequest, match="limit is 256"):
        embedding_engine.embed(["x"] * 257)
    with pytest.raises(NotFound, match=r"available: .*all-MiniLM-L6-v2"):
        embedding_engine.embed(["x"], model="gpt-4")


def test_long_text_is_truncated_to_the_limit(embedding_engine: EmbeddingEngine) -> None:
    limit = embedding_engine.settings.limits.max_chars
    cut = embedding_engine.embed(["ab " * limit], model=MINILM).vectors[0]
    exact = embedding_engine.embed([("ab " * limit)[:limit]], model=MINILM).vectors[0]
    np.testing.assert_allclose(cut, exact, atol=1e-6)


def test_nul_characters_do_not_cut_the_text(embedding_engine: EmbeddingEngine) -> None:
    with_nul = embedding_engine.embed(["\x00password reset"], model=E5).vectors[0]
    plain = embedding_engine.embed(["password reset"], model=E5).vectors[0]
    assert float(with_nul @ plain) > 0.95


def test_configured_prompt_is_prepended(embedding_settings) -> None:
    from embedding_service.backends import BACKENDS

    spec = embedding_settings.models[MINILM]
    backend = BACKENDS.create(spec.backend, {**spec.backend_options(), "query_prompt": "query: "}, cpu_threads=1)
    try:
        prompted = backend.encode(["reset my password"], "query")
        by_hand = backend.encode(["query: reset my password"], "document")
        np.testing.assert_allclose(prompted.vectors, by_hand.vectors, atol=1e-6)
        assert prompted.token_counts == by_hand.token_counts
        plain = backend.encode(["reset my password"], "document")
        assert float(plain.vectors[0] @ prompted.vectors[0]) < 0.999
    finally:
        backend.close()


@pytest.mark.parametrize("model", [E5, MINILM])
def test_onnx_models_run_two_batches_at_once_on_a_core_each(embedding_engine: EmbeddingEngine, model: str) -> None:
    served = embedding_engine.resolve(model)
    assert embedding_engine.settings.batching.workers == 2 and embedding_engine.settings.cpu_threads == 2
    assert len(served.batcher._workers) == 2
    session = served.backend._encoder._session  # type: ignore[attr-defined]
    assert session.get_session_options().intra_op_num_threads == 1
