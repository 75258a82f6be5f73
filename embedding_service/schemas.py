"""Wire schemas of the embedding service: the seed routes, OpenAI embeddings and Cohere/Jina rerank.

Requests are validated with these models; responses are built as plain dicts on the hot path
and these models document them in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from embedding_service.settings import InputType

Text = Annotated[str, Field(min_length=1)]
Texts = Annotated[list[Text], Field(min_length=1)]
ModelName = Annotated[str | None, Field(min_length=1, description="Model name or alias; default if absent")]
InputTypeField = Annotated[
    InputType | None,
    Field(description="Embed as `query` or `document` (adds the model's prompt); model default if absent"),
]


# --- seed routes -----------------------------------------------------------------------------


class EmbedTextsRequest(BaseModel):
    """`POST /<model>`: several texts."""

    texts: Texts
    input_type: InputTypeField = None


class EmbeddingResponse(BaseModel):
    """`GET /<model>/<text>`: one vector."""

    model: str
    dim: int
    embedding: list[float]


class EmbeddingsResponse(BaseModel):
    """`POST /<model>`: one vector per text, in order."""

    model: str
    dim: int
    embeddings: list[list[float]]


class SimilarityRequest(BaseModel):
    """`POST /similarity`."""

    a: Text
    b: Text
    model: ModelName = None


class SimilarityResponse(BaseModel):
    """Cosine similarity in [-1, 1]."""

    model: str
    score: float


class RerankRequest(BaseModel):
    """`POST /rerank`."""

    query: Text
    candidates: Texts
    model: ModelName = None
    top_n: int | None = Field(default=None, ge=1, description="Return only the best N")


class RerankItem(BaseModel):
    """One candidate with its score."""

    index: int
    text: str
    score: float


class RerankResponse(BaseModel):
    """Candidates sorted by score, best first."""

    model: str
    query: str
    results: list[RerankItem]


# --- OpenAI dialect --------------------------------------------------------------------------


class OpenAIEmbeddingRequest(BaseModel):
    """`POST /v1/embeddings` as the OpenAI API defines it (token-array input is not supported)."""

    input: Text | Texts
    model: ModelName = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, description="Keep the first N components, re-normalised")
    user: str | None = None
    input_type: InputTypeField = None


class OpenAIEmbedding(BaseModel):
    """One vector; base64 is little-endian float32."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    """Tokens read."""

    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    """OpenAI's embedding list."""

    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: EmbeddingUsage


class RerankDocument(BaseModel):
    """A document given as an object (Cohere also accepts plain strings)."""

    text: Text


class CohereRerankRequest(BaseModel):
    """`POST /v1/rerank` in the Cohere/Jina shape."""

    query: Text
    documents: Annotated[list[Text | RerankDocument], Field(min_length=1)]
    model: ModelName = None
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False


class CohereRerankResult(BaseModel):
    """One ranked document."""

    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankUsage(BaseModel):
    """Tokens read."""

    total_tokens: int


class CohereRerankResponse(BaseModel):
    """Results best first."""

    id: str
    model: str
    results: list[CohereRerankResult]
    usage: RerankUsage
