"""Transcript renderings for OpenAI's response_format: text, srt, vtt, verbose_json."""

from __future__ import annotations

from typing import Any

from asr_service.backends import Segment
from asr_service.engine import Transcript


def timestamp(seconds: float, decimal: str) -> str:
    """``HH:MM:SS,mmm`` (SRT, ``decimal=","``) or ``HH:MM:SS.mmm`` (WebVTT)."""
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def to_srt(segments: list[Segment]) -> str:
    """SubRip subtitles, one cue per segment."""
    cues = [
        f"{i}\n{timestamp(s.start, ',')} --> {timestamp(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(segments: list[Segment]) -> str:
    """WebVTT subtitles, one cue per segment."""
    cues = [f"{timestamp(s.start, '.')} --> {timestamp(s.end, '.')}\n{s.text.strip()}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_verbose_json(transcript: Transcript, granularities: set[str]) -> dict[str, Any]:
    """OpenAI's verbose_json: language, duration, text, segments and/or words."""
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": transcript.language,
        "duration": transcript.duration,
        "text": transcript.text,
    }
    if "segment" in granularities or not granularities:
        body["segments"] = [
            {
                "id": s.id,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "seek": s.extra.get("seek", 0),
                "tokens": s.extra.get("tokens", []),
                "temperature": s.extra.get("temperature", 0.0),
                "avg_logprob": s.extra.get("avg_logprob", 0.0),
                "compression_ratio": s.extra.get("compression_ratio", 0.0),
                "no_speech_prob": s.extra.get("no_speech_prob", 0.0),
            }
            for s in transcript.segments
        ]
    if "word" in granularities:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end}
            for s in transcript.segments
            for w in (s.words or [])
        ]
    return body
