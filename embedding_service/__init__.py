"""Text embedding service (port 7202): seed routes, OpenAI /v1/embeddings and Cohere-style rerank."""
