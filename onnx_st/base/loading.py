"""A kind's class, and loading a model with the class its files name."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from onnx_st.base.model import BaseModel
from onnx_st.hub import resolve_model_dir
from onnx_st.kinds import ModelKind, detect_kind, get_kind


def model_class(kind: str | ModelKind) -> type[BaseModel]:
    """The onnx-st class that loads ``kind`` (its module is imported on first use).

    Example:
        >>> model_class("cross").__name__
        'CrossEncoder'
    """
    module, attribute = get_kind(kind).class_path.split(":")
    cls = getattr(importlib.import_module(module), attribute)
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise TypeError(f"{get_kind(kind).class_path} is not a model class")
    return cls


def load_by_kind(model: str | Path, kind: str | ModelKind = "auto", **kwargs: Any) -> BaseModel:
    """Load a model with the front class of its kind (``auto``: :func:`detect_kind` on the local directory).

    Example:
        >>> model = load_by_kind("reranker-onnx")  # a CrossEncoder
    """
    if kind == "auto":
        local = Path(model).expanduser()
        if not local.is_dir():
            local = resolve_model_dir(model, local_files_only=kwargs.get("local_files_only", False),
                                      token=kwargs.get("token"), revision=kwargs.get("revision"),
                                      cache_dir=kwargs.get("cache_folder"))
        resolved = detect_kind(local).kind
    else:
        resolved = get_kind(kind)
    return model_class(resolved)(model, **kwargs)
