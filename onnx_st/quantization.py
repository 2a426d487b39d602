"""Embedding quantization to int8, uint8, binary and ubinary, as sentence-transformers does it."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from onnx_st.errors import InputError

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS: tuple[str, ...] = ("float32", "int8", "uint8", "binary", "ubinary")


def check_precision(precision: str) -> str:
    """Return ``precision`` or raise InputError listing the allowed ones."""
    if precision not in PRECISIONS:
        raise InputError(f"Precision {precision!r} is not supported, must be one of {PRECISIONS}")
    return precision


def _ranges(calibration: np.ndarray, precision: str) -> np.ndarray:
    """Per-dimension ``[min; max]`` of the calibration embeddings."""
    if calibration.ndim == 1 or calibration.shape[0] == 1:
        raise InputError(f"Cannot compute {precision} quantization ranges from a single embedding; "
                         "pass ranges= or calibration_embeddings=")
    return np.vstack((calibration.min(axis=0), calibration.max(axis=0)))


def quantize_embeddings(embeddings: Any, precision: Precision, ranges: np.ndarray | None = None,
                        calibration_embeddings: np.ndarray | None = None) -> Any:
    """Quantize float embeddings.

    int8/uint8 map each dimension's [min, max] (from ``ranges``, else ``calibration_embeddings``,
    else the embeddings themselves) onto 256 buckets; binary/ubinary pack the sign bits.

    Args:
        embeddings: ``(n, dim)`` or ``(dim,)`` float array.
        precision: one of ``float32``, ``int8``, ``uint8``, ``binary``, ``ubinary``.
        ranges: optional ``(2, dim)`` array of per-dimension minimum and maximum.
        calibration_embeddings: optional embeddings to compute the ranges from.

    Returns:
        The quantized array (int8 or uint8; binary forms have ``ceil(dim / 8)`` columns); an empty list
        gives ``[]``, and a list of ``(tokens, dim)`` matrices a list quantized with shared ranges.

    Raises:
        InputError: unknown precision, integer input, or int8 ranges from one embedding.

    Example:
        >>> quantize_embeddings(np.array([[0.1, -0.2], [0.3, 0.4]]), "ubinary")
        array([[128], [192]], dtype=uint8)
    """
    check_precision(precision)
    if isinstance(embeddings, list):
        if not embeddings:
            return []
        if isinstance(embeddings[0], np.ndarray) and embeddings[0].ndim == 2:
            if precision.endswith("int8") and ranges is None:
                data = np.concatenate(embeddings) if calibration_embeddings is None else calibration_embeddings
                if len(data):
                    ranges = _ranges(np.asarray(data), precision)
            return [quantize_embeddings(m, precision, ranges, calibration_embeddings) for m in embeddings]
    embeddings = np.asarray(embeddings)
    if not np.issubdtype(embeddings.dtype, np.number):
        raise InputError(f"Embeddings to quantize must be numeric, got dtype {embeddings.dtype}")
    if embeddings.dtype in (np.int8, np.uint8):
        raise InputError("Embeddings to quantize must be float rather than int8 or uint8.")
    if not np.issubdtype(embeddings.dtype, np.number) or embeddings.ndim not in (1, 2):
        raise InputError(f"Embeddings to quantize must be a numeric (dim,) or (n, dim) array, "
                         f"got dtype {embeddings.dtype} and shape {embeddings.shape}")
    if precision == "float32":
        return embeddings.astype(np.float32)
    if embeddings.ndim == 2 and embeddings.shape[0] == 0:
        dim = embeddings.shape[1] if precision.endswith("int8") else (embeddings.shape[1] + 7) // 8
        return np.zeros((0, dim), dtype=np.int8 if precision in ("int8", "binary") else np.uint8)
    if precision.endswith("int8"):
        if ranges is None:
            calibration = embeddings if calibration_embeddings is None else np.asarray(calibration_embeddings)
            if not np.issubdtype(calibration.dtype, np.number) or calibration.ndim not in (1, 2) \
                    or calibration.shape[-1] != embeddings.shape[-1]:
                raise InputError(f"calibration_embeddings must be a (n, {embeddings.shape[-1]}) float array, "
                                 f"got dtype {calibration.dtype} and shape {calibration.shape}")
            ranges = _ranges(calibration, precision)
        ranges = np.asarray(ranges)
        if not np.issubdtype(ranges.dtype, np.number) or ranges.shape != (2, embeddings.shape[-1]):
            raise InputError(f"ranges must be a (2, {embeddings.shape[-1]}) array of per-dimension minimum and "
                             f"maximum, got dtype {ranges.dtype} and shape {ranges.shape}")
        ranges = ranges.astype(np.float32, copy=False)
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q_vals = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
        return q_vals.astype(np.uint8) if precision == "uint8" else (q_vals - 128).astype(np.int8)
    packed = np.packbits(embeddings > 0, axis=-1)
    return (packed - 128).astype(np.int8) if precision == "binary" else packed
