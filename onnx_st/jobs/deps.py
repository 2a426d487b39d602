"""Optional dependencies, imported when a job needs them, with an error naming the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError


def _require(module: str, extra: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"{purpose} needs {module.split('.')[0]}: pip install 'onnx-st[{extra}]' "
                                f"({exc})") from exc


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
