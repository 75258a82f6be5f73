"""Embedding routes in process (Flask test client around the shared real engine)."""

from __future__ import annotations

import base64

import numpy as np
import pytest


@pytest.fixture
def fake_client(fake_app):
    """The embedding routes on the fake backend: no weights, for route and error tests."""
    return fake_app("embedding").test_client()


def test_seed_get_single_text(embedding_client) -> None:
    response = embedding_client.get("/Qwen3-Embedding-4B/hello%20world")
    assert response.status_code == 200
    body = response.json
    assert body["model"] == "multilingual-e5-small" and body["dim"] == 384 and len(body["embedding"]) == 384
    direct = embedding_client.post("/multilingual-e5-small", json={"texts": ["hello world"]}).json
    np.testing.assert_allclose(body["embedding"], direct["embeddings"][0], atol=1e-6)


def test_seed_post_batch(embedding_client) -> None:
    response = embedding_client.post("/Qwen3-Embedding-4B", json={"texts": ["hello world", "python语言"]})
    assert response.status_code == 200
    body = response.json
    assert body["dim"] == 384 and len(body["embeddings"]) == 2
    assert all(len(v) == 384 for v in body["embeddings"])


def test_seed_similarity(embedding_client) -> None:
    related = embedding_client.post("/similarity", json={"a": "python programming", "b": "learn python"}).json
    unrelated = embedding_client.post("/similarity", json={"a": "python programming", "b": "红烧肉的做法"}).json
    assert set(related) == {"model", "score"}
    assert -1 <= unrelated["score"] < related["score"] <= 1
    minilm = embedding_client.post("/similarity", json={"a": "cat", "b": "cat", "model": "all-MiniLM-L6-v2"}).json
    assert minilm["model"] == "all-MiniLM-L6-v2" and minilm["score"] == pytest.approx(1.0, abs=1e-5)


def test_seed_rerank(embedding_client) -> None:
    response = embedding_client.post(
        "/rerank", json={"query": "python", "candidates": ["python tutorial", "java guide", "python flask"]}
    )
    assert response.status_code == 200
    results = response.json["results"]
    assert [r["text"] for r in results][-1] == "java guide"
    assert {r["index"] for r in results} == {0, 1, 2}
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    top = embedding_client.post("/rerank", json={"query": "python", "candidates": ["a", "python"], "top_n": 1})
    assert [r["text"] for r in top.json["results"]] == ["python"]


def test_openai_embeddings_float_and_base64(embedding_client) -> None:
    floats = embedding_client.post("/v1/embeddings", json={"input": ["a", "b"], "model": "all-MiniLM-L6-v2"}).json
    assert floats["object"] == "list" and floats["model"] == "all-MiniLM-L6-v2"
    assert [d["index"] for d in floats["data"]] == [0, 1]
    assert floats["usage"]["prompt_tokens"] == floats["usage"]["total_tokens"] > 0
    encoded = embedding_client.post(
        "/v1/embeddings", json={"input": ["a", "b"], "model": "all-MiniLM-L6-v2", "encoding_format": "base64"}
    ).json
    decoded = np.frombuffer(base64.b64decode(encoded["data"][1]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, floats["data"][1]["embedding"], atol=1e-7)
    short = embedding_client.post("/v1/embeddings", json={"input": "a", "dimensions": 32}).json
    assert len(short["data"][0]["embedding"]) == 32


def test_models_and_cohere_rerank(embedding_client) -> None:
    models = embedding_client.get("/v1/models").json
    ids = [m["id"] for m in models["data"]]
    assert ids == ["multilingual-e5-small", "all-MiniLM-L6-v2"]
    assert models["data"][0]["aliases"] == ["Qwen3-Embedding-4B"]
    ranked = embedding_client.post(
        "/v1/rerank",
        json={
            "query": "如何重置我的密码",
            "documents": ["这家餐厅的菜很好吃", {"text": "忘记密码怎么办"}],
            "top_n": 1,
            "return_documents": True,
        },
    ).json
    assert ranked["results"] == [
        {"index": 1, "relevance_score": ranked["results"][0]["relevance_score"], "document": {"text": "忘记密码怎么办"}}
    ]
    assert ranked["usage"]["total_tokens"] > 0
    bare = embedding_client.post("/v1/rerank", json={"query": "q", "documents": ["a", "b"]}).json
    assert all("document" not in r for r in bare["results"])


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/fake-model", {"texts": []}, "texts"),
        ("/fake-model", {"texts": [""]}, "texts.0"),
        ("/fake-model", {"texts": ["ok", "  "]}, "texts"),
        ("/fake-model", {"texts": ["a", 3]}, "texts.1"),
        ("/fake-model", {"texts": "not a list"}, "texts"),
        ("/fake-model", {"text": ["a"]}, "texts"),
        ("/fake-model", {"texts": ["a"], "input_type": "passage"}, "input_type"),
        ("/similarity", {"a": "x"}, "b"),
        ("/similarity", {"a": "x", "b": None}, "b"),
        ("/rerank", {"query": "q", "candidates": []}, "candidates"),
        ("/rerank", {"query": "q", "candidates": ["a"], "top_n": 0}, "top_n"),
        ("/v1/embeddings", {"input": []}, "input"),
        ("/v1/embeddings", {"input": [[1, 2, 3]]}, "input"),
        ("/v1/embeddings", {"input": "a", "encoding_format": "int8"}, "encoding_format"),
        ("/v1/embeddings", {"input": "a", "dimensions": 0}, "dimensions"),
        ("/v1/embeddings", {"input": "a", "dimensions": 65}, "dimensions"),
        ("/v1/rerank", {"query": "q"}, "documents"),
    ],
)
def test_bad_requests_name_the_field(fake_client, path: str, body: dict, param: str) -> None:
    response = fake_client.post(path, json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"].startswith(param)


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"\xff\xfe", b"null"])
def test_non_json_bodies_are_400(fake_client, raw: bytes) -> None:
    response = fake_client.post("/similarity", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"]["code"] in {"missing_body", "invalid_json"}


def test_unknown_model_is_404_listing_models(fake_client) -> None:
    for response in (
        fake_client.get("/gpt-4/hello"),
        fake_client.post("/gpt-4", json={"texts": ["a"]}),
        fake_client.post("/v1/embeddings", json={"input": "a", "model": "gpt-4"}),
        fake_client.post("/rerank", json={"query": "q", "candidates": ["a"], "model": "gpt-4"}),
    ):
        assert response.status_code == 404
        assert "fake-small" in response.json["error"]["message"]
        assert response.json["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/fake-small/..%2F..%2Fetc%2Fpasswd",
        "/fake-small/a/../../b",
        "/fake-small/%00x",
        "/fake-small/" + "x" * 20000,
    ],
)
def test_path_tricks_are_embedded_as_text(fake_client, path: str) -> None:
    response = fake_client.get(path)
    assert response.status_code == 200
    assert len(response.json["embedding"]) == 64
    assert "root:" not in response.get_data(as_text=True)


def test_dot_dot_paths_never_read_files(fake_client) -> None:
    response = fake_client.get("/../../etc/passwd")
    assert response.status_code in (400, 404)
    assert "root:" not in response.get_data(as_text=True)
