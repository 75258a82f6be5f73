"""HTTP layer of the TTS service: parse forms and JSON, call the engine, encode audio. No model code here."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from flask import Response, jsonify, request

from common.app import app_factory, client_gone_check, current_engine
from common.errors import BadRequest
from common.openapi import ApiBlueprint, Upload
from common.streaming import bytes_response, sse_response
from common.validation import form_body, json_body
from tts_service import encoding, schemas
from tts_service.backends import SynthesisParams
from tts_service.engine import SpeechStream, TtsEngine
from tts_service.settings import TtsSettings

DESCRIPTION = (
    "Text to speech. Seed route `/synthesize` (multipart: `text`, `style`, `prompt_audio`, `temperature`, "
    "`top_p`) returning WAV, `/synthesize/stream` (WAV with a streaming header, then PCM per clause), "
    "`/styles`, OpenAI `/v1/audio/speech`, `/v1/audio/voices` and `/v1/models`."
)
ERRORS = (400, 404, 429)
PROMPT_AUDIO = (Upload("prompt_audio", required=False, description="Reference recording (1-60 s); wins over `style`"),)

routes = ApiBlueprint("tts", __name__)


def _seed_request() -> tuple[str, str | None, bytes | None, SynthesisParams]:
    form = json_body(schemas.SynthesizeForm) if request.is_json else form_body(schemas.SynthesizeForm)
    prompt_audio = None
    if "prompt_audio" in request.files:
        prompt_audio = request.files["prompt_audio"].read()
    elif request.form.get("prompt_audio"):
        raise BadRequest("prompt_audio must be a file upload (curl: -F prompt_audio=@voice.wav)", param="prompt_audio")
    params = SynthesisParams(temperature=form.temperature, top_p=form.top_p, top_k=form.top_k, speed=form.speed)
    return form.text, form.style, prompt_audio, params


def _audio_headers(sample_rate: int, voice: dict[str, Any], **extra: str) -> dict[str, str]:
    headers = {"X-Sample-Rate": str(sample_rate), "X-Voice-Style": str(voice["style"]), **extra}
    if "prompt_pitch_hz" in voice:
        headers["X-Prompt-Pitch-Hz"] = str(voice["prompt_pitch_hz"])
        headers["X-Prompt-Syllables-Per-S"] = str(voice["prompt_syllables_per_s"])
    return headers


@routes.api(
    "/synthesize",
    methods=["POST"],
    summary="Speak a text as a WAV file (seed route)",
    request=schemas.SynthesizeForm,
    uploads=PROMPT_AUDIO,
    response_content_type="audio/wav",
    response_schema={"type": "string", "format": "binary"},
    errors=ERRORS,
    tags=("seed",),
)
def synthesize() -> Response:
    """A complete 16-bit mono WAV; ``X-Sample-Rate`` and ``X-Audio-Duration`` headers describe it."""
    text, style, prompt_audio, params = _seed_request()
    speech = current_engine(TtsEngine).synthesize(text, style, prompt_audio, params, client_gone_check())
    headers = _audio_headers(speech.sample_rate, speech.voice, **{"X-Audio-Duration": f"{speech.duration:.3f}"})
    return Response(encoding.wav_bytes(speech.samples, speech.sample_rate), mimetype="audio/wav", headers=headers)


@routes.api(
    "/synthesize/stream",
    methods=["POST"],
    summary="Speak a text, streaming audio clause by clause",
    request=schemas.SynthesizeForm,
    uploads=PROMPT_AUDIO,
    response_content_type="audio/wav",
    response_schema={"type": "string", "format": "binary"},
    errors=ERRORS,
    tags=("seed",),
)
def synthesize_stream() -> Response:
    """A WAV header with "unknown length" sizes (0xFFFFFFFF), then 16-bit PCM as each clause is made."""
    text, style, prompt_audio, params = _seed_request()
    stream = current_engine(TtsEngine).stream(text, style, prompt_audio, params)
    body = encoding.encode_stream(stream, stream.sample_rate, "wav")
    return bytes_response(
        body, "audio/wav", close=stream.close, headers=_audio_headers(stream.sample_rate, stream.voice)
    )


@routes.api(
    "/styles",
    summary="Preset voices (seed styles)",
    response=schemas.StyleList,
    errors=(),
    tags=("seed",),
)
def styles() -> Response:
    """Every preset with its language and description, the default, and the voice aliases."""
    engine = current_engine(TtsEngine)
    styles = [
        schemas.Style(name=p.name, language=p.language, description=p.description) for p in engine.presets.values()
    ]
    answer = schemas.StyleList(
        default=engine.settings.default_style, styles=styles, aliases=engine.settings.voice_aliases
    )
    return jsonify(answer.model_dump())


@routes.api(
    "/v1/audio/voices",
    summary="Voices for /v1/audio/speech (presets and OpenAI names mapped to them)",
    response=schemas.VoiceList,
    errors=(),
    tags=("openai",),
)
def voices() -> Response:
    """Presets first, then aliases described by the preset they stand for."""
    engine = current_engine(TtsEngine)
    cards = [
        schemas.VoiceCard(id=p.name, name=p.name, language=p.language, description=p.description)
        for p in engine.presets.values()
    ]
    for alias, target in engine.settings.voice_aliases.items():
        preset = engine.presets[target]
        cards.append(schemas.VoiceCard(id=alias, name=alias, language=preset.language, description=f"= {target}"))
    return jsonify(schemas.VoiceList(data=cards, default=engine.settings.default_style).model_dump())


@routes.api(
    "/v1/audio/speech",
    methods=["POST"],
    summary="OpenAI-compatible speech",
    request=schemas.SpeechRequest,
    response_content_type="audio/mpeg",
    response_schema={"type": "string", "format": "binary"},
    errors=ERRORS,
    tags=("openai",),
)
def speech() -> Response:
    """Audio in ``response_format`` streamed as it is made, or SSE ``speech.audio.delta``/``.done`` events."""
    body = json_body(schemas.SpeechRequest)
    engine = current_engine(TtsEngine)
    engine.check_model(body.model)
    params = SynthesisParams(speed=body.speed)
    stream = engine.stream(body.input, body.voice, None, params, text_param="input", style_param="voice")
    encoded = encoding.encode_stream(stream, stream.sample_rate, body.response_format)
    if body.stream_format == "sse":
        return sse_response(
            _speech_events(encoded, stream, body.input),
            lambda message, code: {"type": "error", "error": {"message": message, "code": code}},
            close=stream.close,
        )
    return bytes_response(
        encoded,
        encoding.MIME_TYPES[body.response_format],
        close=stream.close,
        headers=_audio_headers(stream.sample_rate, stream.voice),
    )


def _speech_events(encoded: Iterator[bytes], stream: SpeechStream, text: str) -> Iterator[dict[str, Any]]:
    for data in encoded:
        yield {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")}
    characters = len(text)
    yield {
        "type": "speech.audio.done",
        "usage": {"input_tokens": characters, "output_tokens": 0, "total_tokens": characters},
    }


create_app = app_factory(TtsSettings, TtsEngine, [routes], DESCRIPTION)
