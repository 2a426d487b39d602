"""Batch-invariant int8: MatMuls whose activations are quantized per token row, as a graph rewrite.

ONNX Runtime's dynamic quantization (``DynamicQuantizeMatMul``, ``QAttention``) quantizes a MatMul's
input with one scale for the whole tensor: a text's int8 embedding then depends on the other texts
of its batch (and on the padding they bring). Here every MatMul with a constant 2-D weight becomes::

    x2 = Reshape(x, [-1, K])                     # one row per token
    s  = max(|x2|, axis=1) / 127                 # one scale per row
    xq = QuantizeLinear(x2, s, 128, axis=0)      # uint8, zero point 128 (symmetric)
    y  = Cast(MatMulInteger(xq, Wq, 128)) * s * sw   # int8 weights, one scale per output column
    y  = Reshape(y, [..., N])

Integer products are exact and every other step works on one row (or one element), so each row's
result is the same bits whatever else is in the batch. Activations are symmetric around the zero
point 128 (range 1-255), so ONNX Runtime's u8 x s8 kernels apply the zero point without a pass of
their own. Fused ``Attention`` nodes (O2 graphs) are first split into three MatMuls and a float32
``MultiHeadAttention``, so their projections are quantized the same way.

``smooth`` (SmoothQuant) divides an input's channels by constant scales before its rows are
quantized and multiplies the weight rows by the same scales: the product is unchanged, but a few
outlying channels no longer set every row's scale. The scales are constants, so outputs stay
batch-invariant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

ZERO_POINT = 128
_MS = "com.microsoft"


def split_attention(model: onnx.ModelProto) -> int:
    """Replace each fused ``Attention`` (packed QKV weight, mask index) by three MatMuls and ``MultiHeadAttention``.

    The attention itself stays float32 and fused; only the projections become plain MatMuls, which
    :func:`quantize_rows` can then quantize. Returns the number of nodes replaced; nodes with past
    state, relative bias or other extras are left alone.
    """
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    replaced = 0
    for node in graph.node:
        extras = [name for name in node.input[4:] if name]
        if node.op_type != "Attention" or node.domain != _MS or extras or node.input[1] not in weights:
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if set(attrs) - {"num_heads", "mask_filter_value", "scale"} or len(node.output) > 1:
            nodes.append(node)
            continue
        packed = numpy_helper.to_array(weights[node.input[1]])
        prefix = node.name or node.output[0]
        projected = []
        for part, matrix in zip("qkv", np.split(packed, 3, axis=1)):
            name = f"{prefix}/{part}_proj"
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(matrix), f"{name}.weight"))
            nodes.append(helper.make_node("MatMul", [node.input[0], f"{name}.weight"], [f"{name}/out"],
                                          name=f"{name}/MatMul"))
            projected.append(f"{name}/out")
        mask = node.input[3] if len(node.input) > 3 else ""
        inputs = [*projected, node.input[2] if len(node.input) > 2 else "", mask]
        nodes.append(helper.make_node("MultiHeadAttention", inputs, list(node.output), name=f"{prefix}/mha",
                                      domain=_MS, **attrs))
        replaced += 1
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused_initializers(graph)
    return replaced


@dataclass
class _Rewriter:
    graph: onnx.GraphProto
    reduce_range: bool
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    constants: list[onnx.TensorProto] = field(default_factory=list)
    rows: dict[str, tuple[str, str]] = field(default_factory=dict)  # input -> (quantized rows, row scales)
    smooth: Mapping[str, np.ndarray] = field(default_factory=dict)  # input -> channel scales

    def const(self, name: str, value: np.ndarray) -> str:
        self.constants.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def quantized_rows(self, x: str, width: int) -> tuple[str, str]:
        """Quantize ``x`` (last dimension ``width``) once per input: Q, K and V projections share it."""
        if x in self.rows:
            return self.rows[x]
        p = f"{x}/rowq"
        flat = self.node("Reshape", [x, self.const(f"{p}.shape", np.array([-1, width], np.int64))], f"{p}/rows")
        if x in self.smooth:
            inverse = (np.float32(1) / self.smooth[x]).astype(np.float32)
            flat = self.node("Mul", [flat, self.const(f"{p}.inverse_smooth", inverse)], f"{p}/smoothed")
        high = self.node("ReduceMax", [flat], f"{p}/max", axes=[1], keepdims=0)
        low = self.node("Neg", [self.node("ReduceMin", [flat], f"{p}/min", axes=[1], keepdims=0)], f"{p}/negmin")
        peak = self.node("Max", [high, low, "rowq.tiny"], f"{p}/absmax")
        scale = self.node("Div", [peak, "rowq.levels"], f"{p}/scale")
        zero = self.node("Expand", ["rowq.zero_point", self.node("Shape", [scale], f"{p}/n")], f"{p}/zp")
        quantized = self.node("QuantizeLinear", [flat, scale, zero], f"{p}/q", axis=0)
        column = self.node("Unsqueeze", [scale, "rowq.axis1"], f"{p}/scale_col")
        self.rows[x] = (quantized, column)
        return self.rows[x]

    def matmul(self, node: onnx.NodeProto, weight: np.ndarray) -> None:
        x, y = node.input[0], node.output[0]
        p = node.name or y
        limit = 63 if self.reduce_range else 127
        if x in self.smooth:
            weight = weight * self.smooth[x][:, None]
        column_scale = np.maximum(np.abs(weight).max(axis=0), np.float32(1e-30)) / np.float32(limit)
        qweight = np.clip(np.rint(weight / column_scale), -limit, limit).astype(np.int8)
        rows, row_scale = self.quantized_rows(x, weight.shape[0])
        product = self.node("MatMulIntegerToFloat", [
            rows, self.const(f"{p}.qweight", qweight), "rowq.one",
            self.const(f"{p}.column_scale", column_scale.astype(np.float32)), "rowq.zero_point"], f"{p}/cols", domain=_MS)
        self.nodes[-1].name = p  # keeps the MatMul's name: exclusion lists and profiles still find it
        flat = self.node("Mul", [product, row_scale], f"{p}/flat")
        lead = self.node("Shape", [x], f"{p}/lead", end=-1)
        shape = self.node("Concat", [lead, self.const(f"{p}.n", np.array([weight.shape[1]], np.int64))],
                          f"{p}/shape", axis=0)
        self.node("Reshape", [flat, shape], y)


def quantize_rows(model: onnx.ModelProto, exclude: Iterable[str] = (), reduce_range: bool = False,
                  smooth: Mapping[str, np.ndarray] | None = None) -> list[str]:
    """Rewrite every MatMul with a constant 2-D float weight (except ``exclude``) to per-row int8, in place.

    ``reduce_range`` keeps weights within 7 bits, for CPUs whose int8 kernels add u8 x s8 pairs
    in 16 bits (AVX2, AVX-512 without VNNI). ``smooth``: MatMul input name -> positive float32
    channel scales (:func:`smoothing_scales`). Returns the names of the quantized MatMuls.
    """
    graph = model.graph
    skip = set(exclude)
    weights = {init.name: init for init in graph.initializer}
    for name, scales in (smooth or {}).items():
        if scales.ndim != 1 or scales.dtype != np.float32 or not bool(np.all(scales > 0)):
            raise ValueError(f"smoothing scales of {name!r} must be a 1-D positive float32 array")
    rewriter = _Rewriter(graph, reduce_range, smooth=dict(smooth or {}))
    rewriter.const("rowq.tiny", np.array(1e-30, np.float32))
    rewriter.const("rowq.levels", np.array(127.0, np.float32))
    rewriter.const("rowq.zero_point", np.array(ZERO_POINT, np.uint8))
    rewriter.const("rowq.one", np.array(1.0, np.float32))
    rewriter.const("rowq.axis1", np.array([1], np.int64))
    done = []
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        array = numpy_helper.to_array(weight) if weight is not None else None
        if array is None or array.ndim != 2 or array.dtype != np.float32 or node.name in skip:
            rewriter.nodes.append(node)
            continue
        rewriter.matmul(node, array)
        done.append(node.name)
    del graph.node[:]
    graph.node.extend(rewriter.nodes)
    graph.initializer.extend(rewriter.constants)
    _drop_unused_initializers(graph)
    if done and not any(o.domain == _MS for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS, 1))
    return done


# Inputs worth smoothing: normalized or attention outputs, whose outlying channels are the same for
# every token. A GELU output (the feed-forward block's second MatMul) measured worse when smoothed.
SMOOTHED_PRODUCERS = frozenset({"LayerNormalization", "SkipLayerNormalization", "EmbedLayerNormalization",
                                "SimplifiedLayerNormalization", "MultiHeadAttention", "Attention"})


def smoothing_scales(model: onnx.ModelProto, peaks: Mapping[str, np.ndarray], alpha: float = 0.5) -> dict[str, np.ndarray]:
    """SmoothQuant scales ``peak^alpha / weight_peak^(1 - alpha)`` per channel of each smoothable MatMul input.

    ``model``: the graph :func:`quantize_rows` will rewrite (fused ``Attention`` already split);
    ``peaks``: input name -> largest ``|x|`` per channel on sample texts. Inputs produced by
    :data:`SMOOTHED_PRODUCERS` only; scales are divided by their geometric mean.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    weights = {init.name: init for init in model.graph.initializer}
    producers = {output: node.op_type for node in model.graph.node for output in node.output}
    rows: dict[str, list[np.ndarray]] = {}
    for node in model.graph.node:
        if node.op_type == "MatMul" and len(node.input) == 2 and node.input[1] in weights:
            array = numpy_helper.to_array(weights[node.input[1]])
            if array.ndim == 2 and array.dtype == np.float32:
                rows.setdefault(node.input[0], []).append(np.abs(array).max(axis=1))
    scales = {}
    for name, peak_rows in rows.items():
        if producers.get(name) not in SMOOTHED_PRODUCERS or name not in peaks:
            continue
        activation = np.maximum(np.asarray(peaks[name], np.float64), 1e-5)
        weight = np.maximum(np.max(peak_rows, axis=0).astype(np.float64), 1e-5)
        if activation.shape != weight.shape:
            raise ValueError(f"{name}: {activation.shape[0]} channel peaks for {weight.shape[0]} weight rows")
        scale = activation ** alpha / weight ** (1 - alpha)
        scales[name] = (scale / np.exp(np.log(scale).mean())).astype(np.float32)
    return scales


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


__all__ = ["SMOOTHED_PRODUCERS", "ZERO_POINT", "quantize_rows", "smoothing_scales", "split_attention"]
