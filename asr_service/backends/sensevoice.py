"""SenseVoice-Small through FunASR's AutoModel (optional dependency set: bash scripts/install_deps.sh sensevoice).

The weights are a local directory; FunASR is imported only when this backend is selected.
SenseVoice prefixes each VAD segment with tags such as ``<|zh|><|NEUTRAL|><|Speech|><|withitn|>``;
they become ``language``/``emotion``/``event`` instead of leaking into the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from asr_service.backends import Segment, TranscriptInfo, TranscriptionParams
from common.bundled import local_model_dir

WEIGHTS = ("*.pt", "*.onnx")
_TAG = re.compile(r"<\|([^|]*)\|>")
LANGUAGES = {"zh", "en", "yue", "ja", "ko", "nospeech"}
EMOTIONS = {"HAPPY", "SAD", "ANGRY", "NEUTRAL", "FEARFUL", "DISGUSTED", "SURPRISED", "EMO_UNKNOWN"}
EVENTS = {"Speech", "BGM", "Applause", "Laughter", "Cry", "Sneeze", "Breath", "Cough", "Event_UNK"}


class SenseVoiceOptions(BaseModel):
    """``options:`` of the sensevoice backend."""

    model_config = ConfigDict(extra="forbid")

    model_dir: str
    """Local SenseVoiceSmall directory (config.yaml, model.pt, tokenizer files)."""
    vad_model_dir: str | None = None
    """Local fsmn-vad directory; without it, the file is decoded as one segment (keep files short)."""
    device: str = "cpu"
    use_itn: bool = True
    """Inverse text normalisation (punctuation, numbers as digits)."""
    max_segment_ms: int = 30000


def parse_rich_text(raw: str) -> list[dict[str, str | None]]:
    """Split SenseVoice output into parts with their tags.

    ``"<|zh|><|NEUTRAL|><|Speech|><|withitn|>你好。<|en|><|HAPPY|><|BGM|><|woitn|>hi"`` gives
    ``[{"text": "你好。", "language": "zh", "emotion": "NEUTRAL", "event": "Speech"}, {...}]``.
    Unknown tags are dropped; text outside any tag group forms a part with no tags.
    """
    parts: list[dict[str, str | None]] = []
    current: dict[str, str | None] = {"language": None, "emotion": None, "event": None}
    position = 0
    for match in _TAG.finditer(raw):
        text = raw[position : match.start()]
        if text.strip():  # text ends a tag group; the next tag starts a new one
            parts.append({"text": text.strip(), **current})
            current = {"language": None, "emotion": None, "event": None}
        tag = match.group(1)
        if tag in LANGUAGES:
            current["language"] = tag
        elif tag in EMOTIONS:
            current["emotion"] = tag
        elif tag in EVENTS:
            current["event"] = tag
        position = match.end()
    tail = raw[position:]
    if tail.strip():
        parts.append({"text": tail.strip(), **current})
    return parts


class SenseVoiceBackend:
    """SenseVoice-Small with optional FSMN VAD, one result per VAD segment."""

    supports_hotwords = False

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        self.options = SenseVoiceOptions.model_validate(options)
        model_dir = local_model_dir(self.options.model_dir, "SenseVoice model", "model_dir", WEIGHTS)
        vad_dir = (
            local_model_dir(self.options.vad_model_dir, "VAD model", "vad_model_dir", WEIGHTS)
            if self.options.vad_model_dir
            else None
        )
        try:
            import torch
            from funasr import AutoModel
        except ImportError as exc:
            raise RuntimeError("the sensevoice backend needs FunASR: bash scripts/install_deps.sh sensevoice") from exc
        torch.set_num_threads(cpu_threads)
        kwargs: dict[str, Any] = {
            "model": str(model_dir),
            "device": self.options.device,
            "disable_update": True,
            "ncpu": cpu_threads,
        }
        if vad_dir is not None:
            kwargs.update(vad_model=str(vad_dir), vad_kwargs={"max_single_segment_time": self.options.max_segment_ms})
        self._model = AutoModel(**kwargs)

    def transcribe(self, samples: np.ndarray, params: TranscriptionParams) -> tuple[TranscriptInfo, Iterator[Segment]]:
        """Decode the whole file (SenseVoice is non-autoregressive and fast); yield one segment per part."""
        result = self._model.generate(
            input=samples,
            cache={},
            language=params.language or "auto",
            use_itn=self.options.use_itn,
            batch_size_s=60,
            merge_vad=True,
        )
        raw = "".join(item.get("text", "") for item in result)
        parts = parse_rich_text(raw)
        duration = len(samples) / 16000
        language = next((p["language"] for p in parts if p["language"]), params.language)
        segments = [
            Segment(
                i,
                0.0,
                duration,
                str(p["text"]),
                None,
                {"language": p["language"]},
                {"emotion": p["emotion"], "event": p["event"]},
            )
            for i, p in enumerate(parts)
        ]
        return TranscriptInfo(language, duration), iter(segments)

    def close(self) -> None:
        """Drop the model."""
        del self._model
