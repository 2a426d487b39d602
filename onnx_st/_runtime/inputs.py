"""sentence-transformers' calling conventions that onnx-st shares: what is one input, which keywords are torch-only."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from onnx_st.errors import InputError

logger = logging.getLogger("onnx_st")

IGNORED_INIT_KWARGS = frozenset({"modules", "trust_remote_code", "processor_kwargs", "config_kwargs",
                                 "model_card_data", "tokenizer_kwargs"})
"""Constructor keywords of sentence-transformers that only configure torch, transformers or model cards:
accepted and ignored (the ONNX graph, tokenizer.json and config files already fix what they would set)."""

IGNORED_MODEL_KWARGS = frozenset({"torch_dtype", "dtype", "attn_implementation", "device_map", "low_cpu_mem_usage"})
"""``model_kwargs`` keys of the torch backend: accepted and ignored (``export`` is handled by
:mod:`onnx_st.export_hook`)."""

_TEXT_KEYS = frozenset({"text", "common"})
_HONOURED = frozenset({"max_length", "truncation"})


def _is_column(value: Any) -> bool:
    """A ``datasets`` Column (or another lazy sequence type of that package), without importing datasets."""
    return type(value).__module__.startswith("datasets.")


def is_batch(inputs: Any) -> bool:
    """sentence-transformers' rule: lists, tuples, ``datasets`` Columns and 1-D+ string/object arrays are batches."""
    if isinstance(inputs, (list, tuple)) or _is_column(inputs):
        return True
    return isinstance(inputs, np.ndarray) and inputs.ndim >= 1 and inputs.dtype.kind in ("U", "O")


def as_input_list(inputs: Any, what: str = "inputs") -> tuple[list[Any], bool]:
    """``inputs`` as a list plus whether it was one input.

    Batches are what sentence-transformers takes as batches (:func:`is_batch`), and also other
    sequences and array-likes (a pandas Series, a pyarrow array), which it would not read at all.

    Raises:
        InputError: ``None`` or a type that is neither a text nor a batch.
    """
    if isinstance(inputs, str):
        return [inputs], True
    if is_batch(inputs):
        return (inputs.tolist() if isinstance(inputs, np.ndarray) else list(inputs)), False
    if isinstance(inputs, Sequence) or hasattr(inputs, "__array__") or hasattr(inputs, "to_pylist"):
        values = inputs.to_pylist() if hasattr(inputs, "to_pylist") else list(inputs)
        return values, False
    raise InputError(f"{what} must be a str or a list of str, got {type(inputs).__name__}")


def processing_max_length(processing_kwargs: Any) -> int | None:
    """The per-call truncation length of ``processing_kwargs`` (``{"text": {"max_length": n}}`` or under ``common``).

    ``truncation=False`` is refused (the exported graph has a fixed maximum length); keys other than
    ``max_length`` and ``truncation`` configure the torch processor and are ignored with a warning.

    Raises:
        InputError: not a dict of dicts, or a bad ``max_length``.
    """
    if processing_kwargs is None:
        return None
    if not isinstance(processing_kwargs, dict) or not all(isinstance(v, dict) for v in processing_kwargs.values()):
        raise InputError("processing_kwargs must be a dict such as {'text': {'max_length': 128}}")
    length: int | None = None
    for key, values in processing_kwargs.items():
        if key not in _TEXT_KEYS:
            logger.warning("processing_kwargs[%r] applies to a modality onnx-st does not read; ignored", key)
            continue
        for name, value in values.items():
            if name == "max_length":
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                    raise InputError(f"processing_kwargs max_length must be a positive integer, got {value!r}")
                if value is not None and (key == "text" or length is None):
                    length = value
            elif name == "truncation":
                if value is False or value == "do_not_truncate":
                    raise InputError("onnx-st always truncates at max_length (truncation=False is not supported)")
            else:
                logger.warning("processing_kwargs[%r][%r] configures the torch processor; ignored", key, name)
    return length


def has_max_seq_length_setter(module: Any) -> bool:
    """Whether ``module``'s class declares a settable ``max_seq_length`` property."""
    prop = getattr(type(module), "max_seq_length", None)
    return isinstance(prop, property) and prop.fset is not None
