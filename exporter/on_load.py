"""Export on first load: what the runtime calls when a model it loads has no ONNX file.

:func:`export_for_load` runs the same steps as ``onnx-st-export MODEL OUTPUT_DIR``: it writes the
plain sentence-transformers layout with ``onnx/model.onnx`` next to every Transformer, compares
every graph with PyTorch (:func:`exporter.verify_export`) and keeps the parity record of
``onnx/model.onnx`` (onnx-st against sentence-transformers end to end) in ``onnx/parity.json``.
The runtime loads it only when it exports, through the ``onnx_st.export_hooks`` entry point
(see :mod:`onnx_st.export_hook`).
"""

from __future__ import annotations

from pathlib import Path

from onnx_st.errors import OnnxModelError
from onnx_st.kinds import get_kind

from . import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from .export import export_model
from .limits import DEFAULT_ATOL
from .onnx_export import ONNX_FILE, ONNX_SUBDIR
from .parity import PARITY_KINDS, ParityChecker, write_records
from .verify import verify_export

BASE_FILE = f"{ONNX_SUBDIR}/{ONNX_FILE}"

# A smaller sample than the exporter command's 500 texts: a load should not wait on a long comparison.
LOAD_PARITY_TEXTS = 100


def export_for_load(source: str | Path, output_dir: str | Path, kind: str,
                    parity_texts: int = LOAD_PARITY_TEXTS) -> list[str]:
    """Export ``source`` (a local sentence-transformers directory) into the new ``output_dir``, checked.

    Returns:
        The summary lines of the graph check and of the parity record.

    Raises:
        OnnxModelError: a graph differs from PyTorch by more than the exporter command accepts.
    """
    output_dir = Path(output_dir)
    export_model(str(source), output_dir, kind=get_kind(kind).name, model_card=False)
    report = verify_export(output_dir)
    if not report.passed(DEFAULT_ATOL):
        raise OnnxModelError(f"The ONNX export of {source} differs from PyTorch by {report.max_abs_diff:.3e} "
                             f"(more than {DEFAULT_ATOL:g}):\n{report.summary()}")
    lines = [report.summary()]
    if report.checks and get_kind(kind).name in PARITY_KINDS:
        checker = ParityChecker(output_dir, parity_texts)
        record = checker.check(BASE_FILE, checker.thresholds("fp32"), created_by={"method": "export on load"})
        for check in report.checks:
            write_records(output_dir / check.module_dir / ONNX_SUBDIR, [record])
        lines.append(record.summary())
    return lines


__all__ = ["LOAD_PARITY_TEXTS", "export_for_load"]
