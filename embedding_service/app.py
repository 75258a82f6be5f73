"""HTTP layer of the embedding service: parse, call the engine, serialise. No model code here."""

from __future__ import annotations

import base64
import uuid

from flask import Response, jsonify

from common.app import app_factory, current_engine
from common.openapi import ApiBlueprint
from common.validation import json_body
from embedding_service import schemas
from embedding_service.engine import EmbeddingEngine
from embedding_service.settings import EmbeddingSettings

DESCRIPTION = (
    "Text embeddings, similarity and rerank. Seed routes (`/<model>/<text>`, `/<model>`, `/similarity`, "
    "`/rerank`), OpenAI `/v1/embeddings` and `/v1/models`, Cohere/Jina-style `/v1/rerank`."
)
MODEL_ERRORS = (400, 404, 429)

routes = ApiBlueprint("embedding", __name__)


@routes.api(
    "/<model>/<path:text>",
    summary="Embed one text given in the path (seed route)",
    response=schemas.EmbeddingResponse,
    errors=MODEL_ERRORS,
    tags=("seed",),
)
def embed_path_text(model: str, text: str) -> Response:
    """One vector for the URL-decoded ``text``."""
    result = current_engine(EmbeddingEngine).embed([text], model=model, field="text")
    return jsonify(model=result.model, dim=result.dim, embedding=result.vectors[0])


@routes.api(
    "/<model>",
    methods=["POST"],
    summary="Embed several texts (seed route)",
    request=schemas.EmbedTextsRequest,
    response=schemas.EmbeddingsResponse,
    errors=MODEL_ERRORS,
    tags=("seed",),
)
def embed_texts(model: str) -> Response:
    """One vector per text, in request order."""
    body = json_body(schemas.EmbedTextsRequest)
    result = current_engine(EmbeddingEngine).embed(body.texts, model=model, input_type=body.input_type, field="texts")
    return jsonify(model=result.model, dim=result.dim, embeddings=result.vectors)


@routes.api(
    "/similarity",
    methods=["POST"],
    summary="Cosine similarity of two texts (seed route)",
    request=schemas.SimilarityRequest,
    response=schemas.SimilarityResponse,
    errors=MODEL_ERRORS,
    tags=("seed",),
)
def similarity() -> Response:
    """``{"model", "score"}`` with score in [-1, 1]."""
    body = json_body(schemas.SimilarityRequest)
    model, score = current_engine(EmbeddingEngine).similarity(body.a, body.b, model=body.model)
    return jsonify(schemas.SimilarityResponse(model=model, score=score).model_dump())


@routes.api(
    "/rerank",
    methods=["POST"],
    summary="Rank candidates against a query (seed route)",
    request=schemas.RerankRequest,
    response=schemas.RerankResponse,
    errors=MODEL_ERRORS,
    tags=("seed",),
)
def rerank() -> Response:
    """Candidates sorted by score, best first, each with its original index."""
    body = json_body(schemas.RerankRequest)
    model, hits, _ = current_engine(EmbeddingEngine).rerank(
        body.query, body.candidates, model=body.model, top_n=body.top_n
    )
    results = [schemas.RerankItem(index=h.index, text=body.candidates[h.index], score=h.score) for h in hits]
    return jsonify(schemas.RerankResponse(model=model, query=body.query, results=results).model_dump())


@routes.api(
    "/v1/embeddings",
    methods=["POST"],
    summary="OpenAI-compatible embeddings",
    request=schemas.OpenAIEmbeddingRequest,
    response=schemas.OpenAIEmbeddingResponse,
    errors=MODEL_ERRORS,
    tags=("openai",),
)
def openai_embeddings() -> Response:
    """OpenAI's ``/v1/embeddings``; ``encoding_format=base64`` gives little-endian float32."""
    body = json_body(schemas.OpenAIEmbeddingRequest)
    texts = [body.input] if isinstance(body.input, str) else body.input
    result = current_engine(EmbeddingEngine).embed(
        texts, model=body.model, input_type=body.input_type, dimensions=body.dimensions
    )
    if body.encoding_format == "base64":
        vectors: list = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in result.vectors]
    else:
        vectors = list(result.vectors)
    tokens = sum(result.token_counts)
    return jsonify(
        object="list",
        data=[{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        model=result.model,
        usage={"prompt_tokens": tokens, "total_tokens": tokens},
    )


@routes.api(
    "/v1/rerank",
    methods=["POST"],
    summary="Rerank documents (Cohere/Jina shape)",
    request=schemas.CohereRerankRequest,
    response=schemas.CohereRerankResponse,
    errors=MODEL_ERRORS,
    tags=("openai",),
)
def cohere_rerank() -> Response:
    """Cohere/Jina rerank: ``results`` best first with ``relevance_score``."""
    body = json_body(schemas.CohereRerankRequest)
    texts = [d if isinstance(d, str) else d.text for d in body.documents]
    model, hits, tokens = current_engine(EmbeddingEngine).rerank(body.query, texts, model=body.model, top_n=body.top_n)
    results = []
    for hit in hits:
        document = {"document": schemas.RerankDocument(text=texts[hit.index])} if body.return_documents else {}
        results.append(schemas.CohereRerankResult(index=hit.index, relevance_score=hit.score, **document))
    answer = schemas.CohereRerankResponse(
        id=uuid.uuid4().hex, model=model, results=results, usage=schemas.RerankUsage(total_tokens=tokens)
    )
    return jsonify(answer.model_dump(exclude_unset=True))


create_app = app_factory(EmbeddingSettings, EmbeddingEngine, [routes], DESCRIPTION)
