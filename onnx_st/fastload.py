"""ONNX files that load fast: ONNX Runtime's optimised graph with its weights in a memory-mapped file.

A single-file ONNX graph is parsed as one protobuf message and every weight is copied out of it,
so session creation grows with the file (all-mpnet-base-v2: 416 MB). :func:`write_fast_load`
asks ONNX Runtime to save the graph as it runs it (constant folding and operator fusions
applied) with every weight in ``<file>_data`` next to it: ONNX Runtime maps that file into
memory instead of reading and copying it, and has little left to optimise at load. The outputs
are those of the source file run by the same ONNX Runtime (the session applies the same rewrites
to it at load).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from onnx_st.errors import OnnxModelError

FastLoadLevel = Literal["basic", "extended"]
DATA_SUFFIX = "_data"
_MIN_EXTERNAL_BYTES = 1024  # weights below this stay in the graph: shapes and small constants


def data_file(path: Path) -> Path:
    """The file holding the weights of a fast-load ONNX file (``model.onnx`` -> ``model.onnx_data``)."""
    return path.with_name(path.name + DATA_SUFFIX)


def write_fast_load(source: Path, target: Path, level: FastLoadLevel = "extended") -> tuple[Path, Path]:
    """Write ``source`` as ``target`` (graph) + ``target_data`` (weights), optimised by ONNX Runtime.

    ``level="extended"`` keeps ONNX Runtime's fused operators (``com.microsoft`` domain: the file
    needs a CPU or CUDA build of the same ONNX Runtime line to load); ``"basic"`` only folds constants
    and removes redundant nodes (standard ONNX operators, any runtime). ``source`` may be ``target``.

    Raises:
        OnnxModelError: ONNX Runtime cannot load or save the graph.
    """
    import tempfile  # here, not at the top: a cold start reads data_file and never writes a copy

    import onnxruntime as ort

    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}
    if level not in levels:
        raise ValueError(f"level must be one of {sorted(levels)}, got {level!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fast-load-") as tmp:
        graph = Path(tmp) / target.name
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = levels[level]
        options.optimized_model_filepath = str(graph)
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                         data_file(graph).name)
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes",
                                         str(_MIN_EXTERNAL_BYTES))
        try:
            ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise OnnxModelError(f"Cannot optimise ONNX file {source}: {exc}") from exc
        os.replace(data_file(graph), data_file(target))
        os.replace(graph, target)
    return target, data_file(target)


__all__ = ["DATA_SUFFIX", "FastLoadLevel", "data_file", "write_fast_load"]
