"""IndexTTS (production): zero-shot voice cloning from a local model directory.

Install IndexTTS from its source checkout into the venv (it is not a PyPI package) and point
``options.model_dir`` at the downloaded checkpoints; the module is imported only when this
backend is selected, and a missing directory fails at start with a clear message instead of a
hub download. Each clause the engine hands over is one ``infer`` call, so streaming works per
clause. The voice comes from the uploaded ``prompt_audio`` or the style's ``reference_audio``.
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from common.audio import Audio
from common.bundled import local_model_dir
from common.errors import BadRequest
from tts_service.backends import PreparedVoice, SynthesisParams, VoicePreset
from tts_service.encoding import wav_bytes

log = logging.getLogger("suite.tts.indextts")


class IndexTtsOptions(BaseModel):
    """``options:`` of the indextts backend."""

    model_config = ConfigDict(extra="forbid")

    model_dir: str
    """Local IndexTTS checkpoint directory (with ``config.yaml``)."""
    version: Literal[1, 2] = 1
    """1: ``indextts.infer.IndexTTS`` (1.0/1.5); 2: ``indextts.infer_v2.IndexTTS2``."""
    device: str = "cpu"
    use_fp16: bool = False
    sample_rate: int = Field(default=24000, ge=8000, le=48000)
    """Rate IndexTTS writes (24 kHz for the released checkpoints)."""
    max_text_tokens_per_sentence: int = Field(default=120, ge=20, le=600)
    top_k: int = Field(default=30, ge=1, le=1000)
    """Default top-k when a request gives none."""


def generation_kwargs(params: SynthesisParams, default_top_k: int) -> dict[str, Any]:
    """Request knobs as IndexTTS ``infer`` keyword arguments (sampling on; unset knobs keep IndexTTS' defaults)."""
    kwargs: dict[str, Any] = {"do_sample": True, "top_k": params.top_k or default_top_k}
    if params.temperature is not None:
        kwargs["temperature"] = params.temperature
    if params.top_p is not None:
        kwargs["top_p"] = params.top_p
    return kwargs


@dataclass
class ReferenceVoice(PreparedVoice):
    """A reference recording on disk (IndexTTS reads a path); uploaded ones are deleted on close."""

    path: Path
    temporary: bool

    def close(self) -> None:
        """Delete an uploaded reference's temp file (idempotent)."""
        if self.temporary:
            self.path.unlink(missing_ok=True)
            self.temporary = False


class IndexTtsBackend:
    """IndexTTS behind :class:`~tts_service.backends.TtsBackend`."""

    def __init__(self, options: dict[str, Any], cpu_threads: int) -> None:
        self.options = IndexTtsOptions(**options)
        model_dir = local_model_dir(self.options.model_dir, "IndexTTS checkpoint", "model_dir", ("config.yaml",))
        self.sample_rate = self.options.sample_rate
        try:
            import torch

            torch.set_num_threads(cpu_threads)
            module = importlib.import_module("indextts.infer_v2" if self.options.version == 2 else "indextts.infer")
        except ImportError as exc:
            raise RuntimeError(
                "the indextts backend needs IndexTTS installed in .venv (pip install -e <index-tts checkout>)"
            ) from exc
        config = str(model_dir / "config.yaml")
        if self.options.version == 2:
            self._model = module.IndexTTS2(cfg_path=config, model_dir=str(model_dir), use_fp16=self.options.use_fp16)
        else:
            self._model = module.IndexTTS(
                cfg_path=config, model_dir=str(model_dir), is_fp16=self.options.use_fp16, device=self.options.device
            )

    def prepare(self, preset: VoicePreset, reference: Audio | None) -> ReferenceVoice:
        """The uploaded recording (written to a temp WAV) or the style's reference audio."""
        if reference is not None:
            handle, name = tempfile.mkstemp(prefix="tts-prompt-", suffix=".wav")
            with os.fdopen(handle, "wb") as out:
                out.write(wav_bytes(reference.samples, reference.sample_rate))
            return ReferenceVoice(Path(name), temporary=True)
        if preset.reference_audio is None:
            raise BadRequest(
                f"style {preset.name!r} has no reference_audio, which the indextts backend needs; "
                "upload prompt_audio or add one to the preset",
                param="style",
            )
        return ReferenceVoice(preset.reference_audio, temporary=False)

    def synthesize(self, text: str, voice: PreparedVoice, params: SynthesisParams) -> np.ndarray:
        """One clause in the reference's voice (``speed`` is not supported by IndexTTS and is ignored)."""
        assert isinstance(voice, ReferenceVoice)
        kwargs = generation_kwargs(params, self.options.top_k)
        if self.options.version == 2:
            result = self._model.infer(spk_audio_prompt=str(voice.path), text=text, output_path=None, **kwargs)
        else:
            result = self._model.infer(
                str(voice.path),
                text,
                None,
                max_text_tokens_per_sentence=self.options.max_text_tokens_per_sentence,
                **kwargs,
            )
        return to_float_audio(result)

    def close(self) -> None:
        """Drop the model."""
        self._model = None


def to_float_audio(result: Any) -> np.ndarray:
    """IndexTTS returns ``(sample_rate, int16 array)`` when given no output path; as float32 mono."""
    samples = np.asarray(result[1] if isinstance(result, tuple) else result).reshape(-1)
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / 32768.0
    return samples.astype(np.float32)
