"""Dynamic int8 quantization per CPU family, with files named as sentence-transformers (Optimum) names them.

``onnx/model_<weights>_<family>.onnx`` (sentence-transformers' rule: weight type, then CPU family):
signed int8 weights for every family, so each file runs ONNX Runtime's fast u8 x s8 kernels. On
``avx2`` and ``avx512`` (no VNNI) those kernels add pairs of u8 x s8 products in 16 bits, which
can saturate; their weights use the reduced 7-bit range (``reduce_range``), which cannot.
``avx512_vnni`` and ``arm64`` accumulate in 32 bits and keep the full 8-bit range. Activations are
uint8, quantized at run time per token row (:mod:`exporter.rowwise`), so a text's output does not
depend on the rest of its batch; weights are symmetric and per channel (per output column).
Quantized: MatMuls with constant weights (a fused ``Attention`` of the O2 graph is split first into
three projections and a float32 ``MultiHeadAttention``) and embedding tables (``Gather``, or the
fused ``EmbedLayerNormalization``, weights only: the file shrinks by three quarters). ONNX Runtime's
per-tensor dynamic quantization (``activations="tensor"``: ``DynamicQuantizeMatMul``,
``QAttention``) stays available for comparison; it makes outputs depend on the batch.

Dynamic activation quantization loses most where a MatMul's input has rare large values (the
output projection of the feed-forward block, fed by GELU, in BERT-style models). Such MatMuls are
ranked by the outlier ratio ``max|x| / rms(x)`` of their input on sample texts; with
``exclude="auto"`` the most outlying ones are kept in float32, a few at a time, until the file
meets the int8 cosine targets (with a margin) on a selection sample, which is separate from the
sample of the parity record. When no step meets them, the search runs again with the embedding table
in float32: int8 table rows move every token's input, which per-token outputs (multi-vector) feel
most.

The near-lossless variant ``onnx/model_qint8_<family>_hq.onnx`` (``--quantize <family>_hq``) is the
same row-wise int8 file with SmoothQuant channel scales (:func:`exporter.rowwise.smoothing_scales`,
``alpha`` 0.5, from the channel peaks of the selection texts) on the inputs that come from a
normalization or an attention, and the embedding table in float32. all-MiniLM-L6-v2 on 2,000
sentences: min cosine 0.996 instead of 0.990, at 0.95-1.0x the speed of the plain int8 file.
Its records hold it to :data:`HQ_THRESHOLDS`; ``file_name="auto"`` does not pick it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from onnx_st.kinds import get_kind

from . import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from .onnx_export import ONNX_SUBDIR

logger = logging.getLogger(__name__)

FAMILIES: dict[str, str] = {"avx2": "qint8", "avx512": "qint8", "avx512_vnni": "qint8", "arm64": "qint8"}
# Families whose int8 kernels sum u8 x s8 pairs in 16 bits (vpmaddubsw): 7-bit weights avoid saturation.
REDUCED_RANGE_FAMILIES: frozenset[str] = frozenset({"avx2", "avx512"})
QUANTIZED_OP_TYPES: tuple[str, ...] = ("MatMul", "Gather", "Attention", "EmbedLayerNormalization")
# Selection targets: the parity thresholds (mean 0.99, min 0.98) plus a margin for a larger sample.
SELECTION_TARGETS: dict[str, float] = {"mean_cosine": 0.993, "min_cosine": 0.985}
# Rerankers output one score per pair (a cosine of one number means nothing): their parity threshold
# is the correlation of the scores (0.99), selected with the same kind of margin.
CROSS_SELECTION_TARGETS: dict[str, float] = {"score_correlation": 0.993}


HQ_SUFFIX = "_hq"
# The near-lossless files' parity thresholds, and their selection targets (with a margin).
HQ_THRESHOLDS: dict[str, float] = {"mean_cosine": 0.998, "min_cosine": 0.995}
CROSS_HQ_THRESHOLDS: dict[str, float] = {"score_correlation": 0.998}
HQ_SELECTION_TARGETS: dict[str, float] = {"mean_cosine": 0.998, "min_cosine": 0.996}
CROSS_HQ_SELECTION_TARGETS: dict[str, float] = {"score_correlation": 0.998}
SMOOTHING_ALPHA = 0.5


def selection_targets(kind: str, hq: bool = False) -> dict[str, float]:
    """The metrics an int8 file (``hq``: a near-lossless one) must reach on the selection sample, for a model kind."""
    if hq:
        return dict(CROSS_HQ_SELECTION_TARGETS if get_kind(kind).scores_pairs else HQ_SELECTION_TARGETS)
    return dict(CROSS_SELECTION_TARGETS if get_kind(kind).scores_pairs else SELECTION_TARGETS)


def hq_thresholds(kind: str) -> dict[str, float]:
    """The parity thresholds of a near-lossless int8 file (``_hq``), for a model kind."""
    return dict(CROSS_HQ_THRESHOLDS if get_kind(kind).scores_pairs else HQ_THRESHOLDS)
# How many of the ranked MatMuls stay float32 at each step of the search.
EXCLUSION_STEPS: tuple[int, ...] = (0, 1, 2, 4, 6, 8, 12, 16)

Scorer = Callable[[], Mapping[str, float | None]]


@dataclass
class QuantizedGraph:
    """One written int8 file (for one Transformer folder)."""

    family: str
    path: Path
    file_name: str
    settings: dict[str, Any] = field(default_factory=dict)


def family_file_name(family: str) -> str:
    """``onnx/model_qint8_<family>.onnx``, e.g. ``onnx/model_qint8_avx2.onnx`` for ``"avx2"``.

    ``"<family>_hq"`` names the near-lossless file: ``onnx/model_qint8_avx2_hq.onnx``.
    """
    base, hq = split_hq(family)
    if base not in FAMILIES:
        raise ValueError(f"unknown CPU family {family!r}; expected one of {sorted(FAMILIES)}, "
                         f"each optionally with {HQ_SUFFIX!r}")
    return f"{ONNX_SUBDIR}/model_{FAMILIES[base]}_{base}{HQ_SUFFIX if hq else ''}.onnx"


def split_hq(family: str) -> tuple[str, bool]:
    """``"avx2_hq"`` -> ``("avx2", True)``; ``"avx2"`` -> ``("avx2", False)``."""
    return (family[: -len(HQ_SUFFIX)], True) if family.endswith(HQ_SUFFIX) else (family, False)


def quantize_graph(source: Path, target: Path, family: str, exclude: Sequence[str] = (),
                   per_channel: bool = True, reduce_range: bool | None = None,
                   activations: str = "row", embeddings: bool = True,
                   peaks: Mapping[str, np.ndarray] | None = None, alpha: float = SMOOTHING_ALPHA) -> dict[str, Any]:
    """Write the dynamic int8 ``target`` of float32 ``source``; returns the settings used.

    ``activations="row"`` (default) quantizes each token row with its own scale
    (:mod:`exporter.rowwise`): a text's output does not depend on the rest of its batch.
    ``"tensor"`` is ONNX Runtime's ``quantize_dynamic`` (one scale per batch, batch-dependent).
    ``reduce_range`` defaults to the family's need (:data:`REDUCED_RANGE_FAMILIES`).
    ``embeddings=False`` keeps the embedding table float32 (row-wise files only).
    ``peaks`` (:func:`channel_peaks` of ``source``) smooths the inputs with SmoothQuant scales of
    strength ``alpha`` (row-wise files only).
    """
    if reduce_range is None:
        reduce_range = family in REDUCED_RANGE_FAMILIES
    if activations == "row":
        return _quantize_rows(source, target, family, exclude, reduce_range, embeddings, peaks, alpha)
    if activations != "tensor":
        raise ValueError(f"activations must be 'row' or 'tensor', got {activations!r}")
    if peaks is not None:
        raise ValueError("smoothing (peaks) applies to row-wise activations only")
    return _quantize_dynamic(source, target, family, list(exclude), QUANTIZED_OP_TYPES, per_channel, reduce_range)


def _quantize_rows(source: Path, target: Path, family: str, exclude: Sequence[str],
                   reduce_range: bool, embeddings: bool = True,
                   peaks: Mapping[str, np.ndarray] | None = None, alpha: float = SMOOTHING_ALPHA) -> dict[str, Any]:
    from .rowwise import quantize_rows, smoothing_scales, split_attention

    model = onnx.load(str(source))
    attention = {n.name for n in model.graph.node if n.op_type == "Attention"}
    split_attention(model)
    # An excluded fused Attention keeps its three projections in float32.
    skipped = [f"{name}/{part}_proj/MatMul" if name in attention else name
               for name in exclude for part in ("qkv" if name in attention else "q")]
    smooth = smoothing_scales(model, peaks, alpha) if peaks is not None else {}
    quantized = quantize_rows(model, exclude=skipped, reduce_range=reduce_range, smooth=smooth)
    table: list[str] = []
    if not embeddings:
        target.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(target))
    else:
        table = _quantize_embeddings(model, target, family)
    return {"family": family, "format": "row-wise MatMulIntegerToFloat",
            "activations": "QUInt8 (dynamic, per token row, zero point 128)", "batch_invariant": True,
            "weights": "QInt8 (symmetric, per output column)", "per_channel": True, "reduce_range": reduce_range,
            "op_types": ["MatMul", *table], "quantized_matmuls": len(quantized),
            "embeddings": "int8" if table else "float32", "excluded_nodes": list(exclude),
            "smoothing": {"method": "SmoothQuant", "alpha": alpha, "inputs": len(smooth)} if smooth else None}


def _quantize_embeddings(model: onnx.ModelProto, target: Path, family: str) -> list[str]:
    """Write ``model`` to ``target`` with int8 embedding tables; returns the quantized operator types."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="onnx-st-rowq-") as tmp:
        rewritten = Path(tmp) / "rows.onnx"
        onnx.save(model, str(rewritten))
        # Embedding tables: int8 weights only (dequantized per looked-up row), batch-invariant as well.
        done = _quantize_dynamic(rewritten, target, family, [], ("Gather", "EmbedLayerNormalization"), True, False)
    return list(done["op_types"])


def _quantize_dynamic(source: Path, target: Path, family: str, exclude: list[str], op_types: Sequence[str],
                      per_channel: bool, reduce_range: bool) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight_type = QuantType.QUInt8 if FAMILIES[family] == "quint8" else QuantType.QInt8
    present_types = {n.op_type for n in onnx.load(str(source), load_external_data=False).graph.node}
    present = [t for t in op_types if t in present_types]
    target.parent.mkdir(parents=True, exist_ok=True)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # quantize_dynamic warns about pre-processing on every call
    try:
        quantize_dynamic(str(source), str(target), op_types_to_quantize=present, per_channel=per_channel,
                         reduce_range=reduce_range, weight_type=weight_type, nodes_to_exclude=exclude,
                         extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        logging.disable(previous)
    return {"family": family, "format": "QOperator", "activations": "QUInt8 (dynamic, per tensor)",
            "batch_invariant": False, "weights": weight_type.name, "per_channel": per_channel,
            "reduce_range": reduce_range, "op_types": present, "excluded_nodes": exclude}


def _quantizable_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    constants = {init.name for init in model.graph.initializer}
    return [n for n in model.graph.node
            if (n.op_type == "MatMul" and n.input[1] in constants) or n.op_type == "Attention"]


def _input_rows(source: Path, feeds: Sequence[Mapping[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
    """Per feed: each quantizable node's input as rows of real tokens (padding left out)."""
    import onnxruntime as ort

    model = onnx.load(str(source))
    watched = sorted({n.input[0] for n in _quantizable_nodes(model)})
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in watched if name not in known)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    for feed in feeds:
        mask = np.asarray(feed["attention_mask"]).astype(bool)
        outputs = session.run(watched, {k: v for k, v in feed.items() if k in inputs})
        yield {name: value[mask] if value.ndim == 3 and value.shape[:2] == mask.shape
               else value.reshape(-1, value.shape[-1]) for name, value in zip(watched, outputs)}


def outlier_ranking(source: Path, feeds: Sequence[Mapping[str, np.ndarray]]) -> list[tuple[str, float]]:
    """Quantizable nodes of ``source`` and the outlier ratio of their input on ``feeds``, largest first."""
    peak: dict[str, float] = {}
    squares: dict[str, float] = {}
    count: dict[str, int] = {}
    for rows_of in _input_rows(source, feeds):
        for name, rows in rows_of.items():
            peak[name] = max(peak.get(name, 0.0), float(np.abs(rows).max()))
            squares[name] = squares.get(name, 0.0) + float(np.square(rows, dtype=np.float64).sum())
            count[name] = count.get(name, 0) + rows.size
    ratio = {n: peak[n] / max(np.sqrt(squares[n] / max(count[n], 1)), 1e-12) for n in peak}
    nodes = _quantizable_nodes(onnx.load(str(source), load_external_data=False))
    return sorted(((n.name, ratio.get(n.input[0], 0.0)) for n in nodes), key=lambda item: -item[1])


def channel_peaks(source: Path, feeds: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Largest ``|x|`` per channel of each quantizable node's input of ``source`` on ``feeds`` (for smoothing)."""
    peaks: dict[str, np.ndarray] = {}
    for rows_of in _input_rows(source, feeds):
        for name, rows in rows_of.items():
            peak = np.abs(rows).max(axis=0)
            peaks[name] = np.maximum(peaks[name], peak) if name in peaks else peak
    return peaks


def meets(metrics: Mapping[str, float | None], targets: Mapping[str, float]) -> bool:
    """Whether every cosine in ``metrics`` reaches its target (missing cosines count as met)."""
    return all(metrics.get(name) is None or float(metrics[name]) >= bound  # type: ignore[arg-type]
               for name, bound in targets.items())


def search_exclusions(write: Callable[[int], None], score: Scorer, limit: int,
                      targets: Mapping[str, float] = SELECTION_TARGETS) -> tuple[int, list[dict[str, Any]]]:
    """Smallest step of :data:`EXCLUSION_STEPS` whose file meets ``targets``; ``write(k)`` writes it.

    Returns the chosen number of float32 nodes (the largest tried when none meets the targets; its
    file is the one left on disk) and the trail of ``{"excluded", metrics...}`` per step.
    """
    trail: list[dict[str, Any]] = []
    steps = [k for k in EXCLUSION_STEPS if k <= limit] or [0]
    for k in steps:
        write(k)
        metrics = dict(score())
        trail.append({"excluded": k, **{m: metrics.get(m) for m in targets}})
        logger.info("int8 with %d float32 nodes: %s", k, metrics)
        if meets(metrics, targets):
            return k, trail
    return steps[-1], trail


__all__ = [
    "CROSS_HQ_SELECTION_TARGETS",
    "CROSS_HQ_THRESHOLDS",
    "CROSS_SELECTION_TARGETS",
    "EXCLUSION_STEPS",
    "FAMILIES",
    "HQ_SELECTION_TARGETS",
    "HQ_SUFFIX",
    "HQ_THRESHOLDS",
    "QUANTIZED_OP_TYPES",
    "REDUCED_RANGE_FAMILIES",
    "SELECTION_TARGETS",
    "SMOOTHING_ALPHA",
    "QuantizedGraph",
    "channel_peaks",
    "family_file_name",
    "hq_thresholds",
    "meets",
    "outlier_ranking",
    "quantize_graph",
    "search_exclusions",
    "selection_targets",
    "split_hq",
]
