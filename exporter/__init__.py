"""Build-time exporter for onnx-st (requires the ``export`` extra: torch, sentence-transformers, onnx)."""

from __future__ import annotations

import importlib.util

_REQUIRED: tuple[str, ...] = ("torch", "sentence_transformers", "transformers", "onnx", "onnxruntime")
_MISSING = [name for name in _REQUIRED if importlib.util.find_spec(name) is None]
if _MISSING:
    raise ImportError(
        f"The onnx-st exporter needs {', '.join(_MISSING)}, which is not installed. "
        'Install the build-time extra with: pip install "onnx-st[export]"'
    )

from .export import detect_kind, export_model, iter_transformer_modules, load_model  # noqa: E402
from .onnx_export import ExportError, export_transformer  # noqa: E402
from .verify import SAMPLE_TEXTS, GraphCheck, VerifyReport, verify_export  # noqa: E402

__all__ = [
    "SAMPLE_TEXTS",
    "ExportError",
    "GraphCheck",
    "VerifyReport",
    "detect_kind",
    "export_model",
    "export_transformer",
    "iter_transformer_modules",
    "load_model",
    "verify_export",
]
