"""The embedding service under real gunicorn, over real HTTP (started by scripts/services.py)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from harness.launch import RunningService, launch
from tests.shared import run_doc_curls

pytestmark = pytest.mark.slow


def test_doc_curl_examples_work_as_written(embedding_server: RunningService) -> None:
    assert run_doc_curls(embedding_server, 7202) == 12


def test_openai_sdk(embedding_server: RunningService) -> None:
    client = openai.OpenAI(base_url=f"{embedding_server.url}/v1", api_key="unused")
    result = client.embeddings.create(input=["hello world", "你好世界"], model="all-MiniLM-L6-v2")  # SDK asks base64
    assert len(result.data) == 2 and len(result.data[0].embedding) == 384
    assert result.usage.prompt_tokens > 0
    direct = httpx.post(
        f"{embedding_server.url}/v1/embeddings", json={"input": "hello world", "model": "all-MiniLM-L6-v2"}
    ).json()
    np.testing.assert_allclose(result.data[0].embedding, direct["data"][0]["embedding"], atol=1e-6)
    short = client.embeddings.create(
        input="hello", model="multilingual-e5-small", dimensions=128, encoding_format="float"
    )
    assert len(short.data[0].embedding) == 128
    assert [m.id for m in client.models.list()] == ["multilingual-e5-small", "all-MiniLM-L6-v2"]
    with pytest.raises(openai.NotFoundError, match="available"):
        client.embeddings.create(input="x", model="text-embedding-3-small")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(input="", model="all-MiniLM-L6-v2")


def test_concurrent_requests_are_batched_and_equal(embedding_server: RunningService) -> None:
    texts = [f"concurrent request {i} about {'cats' if i % 2 else 'databases'}" for i in range(96)]
    with httpx.Client(base_url=embedding_server.url, timeout=60) as client:
        lone = [client.get(f"/all-MiniLM-L6-v2/{t}").json()["embedding"] for t in texts[:8]]
        before = _batched_items(client.get("/metrics").text)

        def one(text: str) -> list[float]:
            response = client.post("/all-MiniLM-L6-v2", json={"texts": [text]})
            assert response.status_code == 200, response.text
            return response.json()["embeddings"][0]

        with ThreadPoolExecutor(32) as pool:
            together = list(pool.map(one, texts))
        metrics = client.get("/metrics").text
    np.testing.assert_allclose(np.array(together[:8]), np.array(lone), atol=1e-5)
    multi_item_batches, items = _batched_items(metrics)
    assert items - before[1] >= 96
    assert multi_item_batches > before[0], "no model call took more than one text"
    assert 'route="/<model>",service="embedding",status="200"' in metrics


def _batched_items(metrics: str) -> tuple[float, float]:
    """(batches with more than one item, items) for MiniLM from the Prometheus text."""
    single = float(re.search(r'engine_batch_size_bucket\{le="1.0",queue="all-MiniLM-L6-v2".*?\} (\S+)', metrics)[1])
    count = float(re.search(r'engine_batch_size_count\{queue="all-MiniLM-L6-v2".*?\} (\S+)', metrics)[1])
    total = float(re.search(r'engine_batch_size_sum\{queue="all-MiniLM-L6-v2".*?\} (\S+)', metrics)[1])
    return count - single, total


def test_http_level_errors_are_json(embedding_server: RunningService) -> None:
    with httpx.Client(base_url=embedding_server.url, timeout=30) as client:
        too_long_url = client.get("/all-MiniLM-L6-v2/" + "a" * 9000)
        assert too_long_url.status_code == 414
        assert too_long_url.json()["error"]["code"] == "bad_http_request"
        too_big = client.post(
            "/all-MiniLM-L6-v2",
            content=b'{"texts": ["' + b"a" * 3_000_000 + b'"]}',
            headers={"Content-Type": "application/json"},
        )
        assert too_big.status_code == 413
        assert too_big.json()["error"]["code"] == "payload_too_large"
        chunked = client.post(
            "/all-MiniLM-L6-v2", content=iter([b"x" * 1_000_000] * 3), headers={"Content-Type": "application/json"}
        )  # no Content-Length
        assert chunked.status_code == 413
        assert chunked.json()["error"]["type"] == "invalid_request_error"
        assert client.get("/readyz").status_code == 200
        response = client.get("/all-MiniLM-L6-v2/still%20serving")
        assert response.status_code == 200
        assert response.headers["X-Request-ID"]


def test_openapi_lists_every_route(embedding_server: RunningService) -> None:
    paths = httpx.get(f"{embedding_server.url}/openapi.json").json()["paths"]
    assert {
        "/{model}/{text}",
        "/{model}",
        "/similarity",
        "/rerank",
        "/v1/embeddings",
        "/v1/models",
        "/v1/rerank",
        "/health",
        "/readyz",
        "/healthz",
        "/metrics",
    } <= set(paths)


def test_request_ids_reach_the_log(embedding_server: RunningService) -> None:
    httpx.get(f"{embedding_server.url}/gpt-4/x", headers={"X-Request-ID": "find-me-123"})
    assert "find-me-123" in embedding_server.log()


def test_api_key(tmp_path: Path) -> None:
    with (
        launch("embedding", tmp_path, env={"EMBEDDING__SERVER__API_KEY": "t0ps3cret"}) as service,
        httpx.Client(base_url=service.url, timeout=30) as client,
    ):
        assert client.get("/health").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/Qwen3-Embedding-4B/hello").status_code == 401
        assert (
            client.post("/similarity", json={"a": "x", "b": "y"}, headers={"Authorization": "Bearer wrong"}).status_code
            == 401
        )
        assert client.get("/metrics").status_code == 401
        ok = client.get("/Qwen3-Embedding-4B/hello", headers={"Authorization": "Bearer t0ps3cret"})
        assert ok.status_code == 200
        sdk = openai.OpenAI(base_url=f"{service.url}/v1", api_key="t0ps3cret")
        assert len(sdk.embeddings.create(input="hi", model="all-MiniLM-L6-v2").data) == 1
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{service.url}/v1", api_key="nope").models.list()
        assert "t0ps3cret" not in service.log()
