"""Graph optimization levels O1-O4, named and defined as sentence-transformers (Optimum) names them.

* ``O1`` (``onnx/model_O1.onnx``): ONNX Runtime basic graph optimizations (constant folding,
  redundant node removal); no transformer-specific fusion.
* ``O2``: extended ONNX Runtime optimizations plus ONNX Runtime's transformer fusions (Attention,
  EmbedLayerNormalization, SkipLayerNormalization, BiasGelu) where the graph allows them.
* ``O3``: ``O2`` with the GELU approximation (tanh ``FastGelu`` instead of erf ``Gelu``).
* ``O4``: ``O3`` in float16 with float32 inputs and outputs, for GPUs (``gpu_only`` in its record).

The transformer fusions match attention written out as eager PyTorch attention, so the graph to
optimize is exported again, with ``attn_implementation="eager"`` when the model supports it (as
``onnx/model.onnx`` now is; a directory exported before may hold an SDPA graph, which hides the
attention mask where the fusion cannot find it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentence_transformers.base.modules.transformer import Transformer

from . import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from .onnx_export import ONNX_FILE, ONNX_SUBDIR, eager_attention, export_transformer

logger = logging.getLogger(__name__)

LEVELS: tuple[str, ...] = ("O1", "O2", "O3", "O4")
# Hugging Face model_type -> ONNX Runtime optimizer model_type (encoders share the BERT fusions).
_ORT_MODEL_TYPES: dict[str, str] = {name: "bert" for name in (
    "bert", "roberta", "xlm-roberta", "camembert", "distilbert", "mpnet", "electra", "albert", "ernie",
    "nomic_bert", "modernbert")}
_LEVEL_SETTINGS: dict[str, dict[str, Any]] = {
    "O1": {"opt_level": 1, "fusions": False, "gelu_approximation": False, "fp16": False},
    "O2": {"opt_level": 2, "fusions": True, "gelu_approximation": False, "fp16": False},
    "O3": {"opt_level": 2, "fusions": True, "gelu_approximation": True, "fp16": False},
    "O4": {"opt_level": 2, "fusions": True, "gelu_approximation": True, "fp16": True},
}


@dataclass(frozen=True)
class OptimizedGraph:
    """One written O-level file."""

    level: str
    path: Path
    file_name: str
    fused_operators: dict[str, int]
    source: str
    settings: dict[str, Any]

    @property
    def gpu_only(self) -> bool:
        """float16 graphs are meant for GPUs."""
        return bool(self.settings["fp16"])

    @property
    def threshold_class(self) -> str:
        """Key of :data:`exporter.parity.THRESHOLDS` for this level."""
        if self.settings["fp16"]:
            return "fp16"
        return "gelu_approx" if self.settings["gelu_approximation"] else "fp32"


def level_file_name(level: str) -> str:
    """``onnx/model_O2.onnx`` for ``"O2"``."""
    if level not in LEVELS:
        raise ValueError(f"unknown optimization level {level!r}; expected one of {LEVELS}")
    return f"{ONNX_SUBDIR}/model_{level}.onnx"


def fusable_graph(module: Transformer, module_dir: Path, workdir: Path, opset: int = 17) -> tuple[Path, str]:
    """The float32 graph to optimize and where it came from: a fresh export (eager attention where the
    model offers it; ``onnx/model.onnx`` may come from an older exporter), else ``onnx/model.onnx``."""
    try:
        return export_transformer(module, workdir, opset=opset), "eager-attention export"
    except Exception as exc:
        logger.warning("export for optimization failed (%s); optimizing onnx/model.onnx", exc)
    return module_dir / ONNX_SUBDIR / ONNX_FILE, ONNX_FILE


def ort_model_type(module: Transformer) -> str | None:
    """ONNX Runtime optimizer model type for the module's architecture (``None``: no transformer fusions)."""
    return _ORT_MODEL_TYPES.get(str(getattr(module.auto_model.config, "model_type", "")))


def optimize_graph(source: Path, target: Path, level: str, module: Transformer,
                   skip_layer_norm: bool = True) -> dict[str, int]:
    """Write ``target`` = ``source`` at ``level``; returns the fused operator counts (non-zero only).

    ``skip_layer_norm=False`` leaves residual ``Add`` + ``LayerNormalization`` unfused (see
    :func:`quantization_source`).
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    settings = _LEVEL_SETTINGS[level]
    config = module.auto_model.config
    model_type = ort_model_type(module)
    fusions = settings["fusions"] and model_type is not None
    options = FusionOptions(model_type or "bert")
    options.enable_gelu_approximation = settings["gelu_approximation"]
    options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = skip_layer_norm
    optimizer = optimize_model(
        str(source), model_type=model_type or "bert", num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
        hidden_size=int(getattr(config, "hidden_size", 0) or 0), optimization_options=options,
        opt_level=settings["opt_level"], use_gpu=settings["fp16"], only_onnxruntime=not fusions)
    if settings["fp16"]:
        optimizer.convert_float_to_float16(keep_io_types=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    optimizer.save_model_to_file(str(target))
    counts = optimizer.get_fused_operator_statistics() if fusions else {}
    return {name: int(count) for name, count in counts.items() if count}


def quantization_source(module: Transformer, source: tuple[Path, str], workdir: Path) -> tuple[Path, str]:
    """The float32 graph to quantize: ``source`` at O2 when that fuses attention, else ``source`` itself.

    The fused ``Attention`` is split again into projections and ``MultiHeadAttention`` when its
    projections are quantized (:mod:`exporter.rowwise`); the fused softmax and ``BiasGelu`` stay.
    ``SkipLayerNormalization`` is not fused here: in ONNX Runtime's CPU kernel it costs about three
    times the ``Add`` + ``LayerNormalization`` it replaces, which in a float32 graph hides behind the
    MatMuls but in an int8 one was a fifth of the time (MiniLM int8 about 25% faster without it).
    """
    graph, origin = source
    if ort_model_type(module) is None:
        return source
    target = workdir / "quantization-source" / ONNX_FILE
    try:
        fused = optimize_graph(graph, target, "O2", module, skip_layer_norm=False)
    except Exception as exc:
        logger.warning("O2 optimization for quantization failed (%s); quantizing %s", exc, origin)
        return source
    if not fused.get("Attention"):
        return source
    return target, f"O2 (no SkipLayerNormalization) of the {origin}"


def optimize_module(module: Transformer, module_dir: str | Path, levels: Sequence[str], workdir: str | Path,
                    source: tuple[Path, str] | None = None) -> list[OptimizedGraph]:
    """Write ``onnx/model_<level>.onnx`` into ``module_dir`` for each level; ``source`` from :func:`fusable_graph`."""
    module_dir = Path(module_dir)
    graph, origin = source or fusable_graph(module, module_dir, Path(workdir))
    written = []
    for level in levels:
        file_name = level_file_name(level)
        fused = optimize_graph(graph, module_dir / file_name, level, module)
        logger.info("%s: fused %s", file_name, fused or "nothing")
        written.append(OptimizedGraph(level, module_dir / file_name, file_name, fused, origin,
                                      dict(_LEVEL_SETTINGS[level])))
    return written


__all__ = ["LEVELS", "OptimizedGraph", "eager_attention", "fusable_graph", "level_file_name", "optimize_graph",
           "optimize_module", "ort_model_type", "quantization_source"]
