"""HTTP layer of the ASR service: parse uploads and forms, call the engine, serialise. No model code here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, jsonify

from asr_service import formats, schemas
from asr_service.backends import Segment, TranscriptionParams
from asr_service.engine import AsrEngine, Transcript, TranscriptStream
from asr_service.live_routes import live_routes
from asr_service.settings import AsrSettings
from common.app import app_factory, client_gone_check, current_engine
from common.openapi import ApiBlueprint, Upload
from common.streaming import ndjson_response, sse_response
from common.validation import form_body, uploaded_file

DESCRIPTION = (
    "Speech recognition. Seed routes `/asr` and `/asr/stream` (multipart `file`), "
    "OpenAI `/v1/audio/transcriptions` and `/v1/models`."
)
ERRORS = (400, 404, 429)
AUDIO = (Upload("file", description="The audio file (wav, mp3, flac, ogg/opus, m4a, webm, ...)"),)

routes = ApiBlueprint("asr", __name__)


def _seed_request() -> tuple[bytes, TranscriptionParams]:
    form = form_body(schemas.AsrForm)
    audio = uploaded_file("file")
    return audio, TranscriptionParams(language=form.language, prompt=form.prompt, hotwords=form.hotwords)


def _detail(transcript: Transcript) -> dict[str, Any]:
    """The ``/asr`` answer; labels (e.g. emotion, event) come from the first segment that has any."""
    labels = next((s.labels for s in transcript.segments if any(s.labels.values())), {})
    segments = [
        schemas.SegmentOut(start=round(s.start, 3), end=round(s.end, 3), text=s.text.strip())
        for s in transcript.segments
    ]
    body = schemas.AsrResponse(
        text=transcript.text,
        model=transcript.model,
        language=transcript.language,
        duration=round(transcript.duration, 3),
        segments=segments,
        **labels,
    )
    return body.model_dump(exclude_unset=True)


@routes.api(
    "/asr",
    methods=["POST"],
    summary="Transcribe an audio file (seed route)",
    request=schemas.AsrForm,
    uploads=AUDIO,
    response=schemas.AsrResponse,
    errors=ERRORS,
    tags=("seed",),
)
def asr() -> Response:
    """``{"text": ...}`` plus language, duration and segments."""
    audio, params = _seed_request()
    return jsonify(_detail(current_engine(AsrEngine).transcribe(audio, params, client_gone_check())))


@routes.api(
    "/asr/stream",
    methods=["POST"],
    summary="Transcribe, streaming one NDJSON line per segment (seed route)",
    request=schemas.AsrForm,
    uploads=AUDIO,
    response=schemas.StreamLine,
    response_content_type="application/x-ndjson",
    errors=ERRORS,
    tags=("seed",),
)
def asr_stream() -> Response:
    """``{"partial_text": <all text so far>}`` per decoded segment, then ``{"event": "done", "text"}``."""
    audio, params = _seed_request()
    stream = current_engine(AsrEngine).stream(audio, params)
    return ndjson_response(_seed_lines(stream), close=stream.close)


def _seed_lines(stream: TranscriptStream) -> Iterator[dict[str, Any]]:
    text = ""
    for segment in stream:
        text += segment.text
        yield {"partial_text": text.strip(), "start": round(segment.start, 3), "end": round(segment.end, 3)}
    yield {
        "event": "done",
        "text": text.strip(),
        "language": stream.language,
        "duration": round(stream.duration, 3),
    }


@routes.api(
    "/v1/audio/transcriptions",
    methods=["POST"],
    summary="OpenAI-compatible transcription",
    request=schemas.TranscriptionForm,
    uploads=AUDIO,
    response=schemas.TranscriptionJson,
    errors=ERRORS,
    tags=("openai",),
)
def openai_transcriptions() -> Response:
    """All of OpenAI's response formats; ``stream=true`` gives SSE ``transcript.text.delta``/``.done``."""
    form = form_body(schemas.TranscriptionForm, list_fields=["timestamp_granularities"])
    engine = current_engine(AsrEngine)
    engine.check_model(form.model)
    audio = uploaded_file("file")
    granularities = set(form.timestamp_granularities)
    params = TranscriptionParams(
        language=form.language,
        prompt=form.prompt,
        temperature=form.temperature,
        word_timestamps="word" in granularities,
    )
    if form.stream:
        stream = engine.stream(audio, params)
        return sse_response(
            _sse_events(stream),
            lambda message, code: {"type": "error", "error": {"message": message, "code": code}},
            close=stream.close,
        )
    transcript = engine.transcribe(audio, params, client_gone_check())
    if form.response_format == "text":
        return Response(transcript.text + "\n", mimetype="text/plain")
    if form.response_format == "srt":
        return Response(formats.to_srt(transcript.segments), mimetype="application/x-subrip")
    if form.response_format == "vtt":
        return Response(formats.to_vtt(transcript.segments), mimetype="text/vtt")
    if form.response_format == "verbose_json":
        return jsonify(formats.to_verbose_json(transcript, granularities))
    return jsonify(text=transcript.text)


def _sse_events(stream: TranscriptStream) -> Iterator[dict[str, Any]]:
    parts: list[Segment] = []
    for segment in stream:
        delta = segment.text if parts else segment.text.lstrip()
        parts.append(segment)
        yield {"type": "transcript.text.delta", "delta": delta}
    yield {"type": "transcript.text.done", "text": "".join(s.text for s in parts).strip()}


create_app = app_factory(AsrSettings, AsrEngine, [routes, live_routes], DESCRIPTION)
