"""LLM chat service (port 7207): seed /api/chat and /api/chat/stream, OpenAI /v1/chat/completions."""
