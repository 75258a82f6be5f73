"""Speech recognition service (port 7205): seed /asr and /asr/stream, OpenAI /v1/audio/transcriptions."""
