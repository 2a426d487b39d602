"""Optional dependencies, imported when a job needs them, with an error naming the extra to install."""

from __future__ import annotations

from types import ModuleType

from onnx_st.extras import import_extra as _require


def pyarrow() -> ModuleType:
    """``pyarrow`` (the ``embed`` extra)."""
    return _require("pyarrow", "embed", "onnx-st embed")


def parquet() -> ModuleType:
    """``pyarrow.parquet`` (the ``embed`` extra)."""
    return _require("pyarrow.parquet", "embed", "onnx-st embed")


def ray() -> ModuleType:
    """``ray`` with Ray Data (the ``ray`` extra)."""
    module = _require("ray", "ray", "The Ray engine")
    _require("ray.data", "ray", "The Ray engine")
    return module


def tqdm_class() -> type | None:
    """``tqdm.auto.tqdm`` when installed, else ``None`` (no progress bar)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm
