"""Pure NumPy: pooling, normalization, activations and similarity functions."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from onnx_st.errors import InputError

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
_EPS = 1e-9


def exclude_prompt(attention_mask: np.ndarray, prompt_length: int) -> np.ndarray:
    """A copy of the mask with the first ``prompt_length`` real tokens of each row zeroed."""
    mask = attention_mask.copy()
    starts = mask.argmax(axis=1)  # > 0 only under left padding
    positions = np.arange(mask.shape[1])[None, :]
    mask[positions < (starts + prompt_length)[:, None]] = 0
    return mask


def pool(token_embeddings: np.ndarray, attention_mask: np.ndarray, mode: str,
         padding_mask: np.ndarray | None = None) -> np.ndarray:
    """Pool ``(batch, seq, dim)`` token embeddings into ``(batch, dim)`` with one pooling mode.

    ``padding_mask`` is the mask before prompt exclusion: weightedmean counts positions from its
    first real token (it defaults to ``attention_mask``).
    """
    if mode == "cls":
        first = attention_mask.argmax(axis=1)
        return token_embeddings[np.arange(len(first)), first]
    mask = attention_mask[..., None].astype(token_embeddings.dtype)
    if mode == "max":
        return np.where(mask > 0, token_embeddings, -np.inf).max(axis=1).astype(token_embeddings.dtype)
    if mode in ("mean", "mean_sqrt_len_tokens"):
        summed = np.einsum("bsd,bs->bd", token_embeddings, mask[..., 0])
        counts = np.maximum(mask.sum(axis=1), _EPS)
        return summed / (counts if mode == "mean" else np.sqrt(counts))
    if mode == "weightedmean":
        seq = token_embeddings.shape[1]
        starts = (attention_mask if padding_mask is None else padding_mask).argmax(axis=1)
        weights = np.arange(1, seq + 1, dtype=token_embeddings.dtype)[None, :] - starts[:, None]
        weighted = mask[..., 0] * weights
        summed = np.einsum("bsd,bs->bd", token_embeddings, weighted)
        return summed / np.maximum(weighted.sum(axis=1, keepdims=True), _EPS)
    if mode == "lasttoken":
        seq = attention_mask.shape[1]
        flipped = attention_mask[:, ::-1]
        last = seq - 1 - flipped.argmax(axis=1)
        last = np.where(flipped.max(axis=1) == 0, 0, last)
        out = token_embeddings[np.arange(len(last)), last]
        return out * attention_mask[np.arange(len(last)), last][:, None].astype(out.dtype)
    raise InputError(f"Unknown pooling mode {mode!r}; supported: {POOLING_MODES}")


def normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """L2-normalize along ``axis``; zero vectors stay zero (epsilon 1e-12 as torch)."""
    norms = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``."""
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU as torch.nn.GELU."""
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(x.dtype)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Identity": lambda x: x,
    "Tanh": np.tanh,
    "Sigmoid": sigmoid,
    "ReLU": lambda x: np.maximum(x, 0),
    "GELU": gelu,
    "SiLU": lambda x: x * sigmoid(x),
    "Softmax": softmax,
}


def activation(name: str | None) -> Callable[[np.ndarray], np.ndarray]:
    """The NumPy function for a torch activation path such as ``torch.nn.modules.activation.Tanh``."""
    key = "Identity" if not name else name.rsplit(".", 1)[-1]
    if key not in ACTIVATIONS:
        raise InputError(f"Unsupported activation {name!r}; supported: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[key]


def _as_float(x: np.ndarray | Sequence[Any]) -> np.ndarray:
    """A numeric array in float32 or wider (integer, bool and float16 inputs become float32).

    Raises:
        InputError: ragged or non-numeric input.
    """
    try:
        arr = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise InputError(f"Embeddings must be a numeric array of equal-length rows: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InputError(f"Embeddings must be a numeric array, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating) or arr.dtype.itemsize < 4:  # float16 would round scores into ties
        arr = arr.astype(np.float32)
    return arr


def _as_2d(x: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """One vector or a matrix, as a ``(n, dim)`` float matrix."""
    arr = _as_float(x)
    if arr.ndim not in (1, 2):
        raise InputError(f"Embeddings must be one vector or a (n, dim) matrix, got shape {arr.shape}")
    return arr[None, :] if arr.ndim == 1 else arr


def _pair(a: np.ndarray, b: np.ndarray, pairwise: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as 2-D arrays of the same width (and, pairwise, the same number of rows).

    Raises:
        InputError: naming both shapes.
    """
    a2, b2 = _as_2d(a), _as_2d(b)
    if a2.shape[1] != b2.shape[1] or (pairwise and a2.shape[0] != b2.shape[0]):
        need = "the same shape" if pairwise else "the same dimension"
        raise InputError(f"Embeddings must have {need}, got shapes {a2.shape} and {b2.shape}")
    return a2, b2


def _same_shape(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as float arrays of one shape (1-D pairs score to a scalar, as in sentence-transformers).

    Raises:
        InputError: naming both shapes.
    """
    a2, b2 = _as_float(a), _as_float(b)
    if a2.shape != b2.shape or a2.ndim not in (1, 2):
        raise InputError(f"Pairwise embeddings must have the same shape, got shapes {a2.shape} and {b2.shape}")
    return a2, b2


def cos_sim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix ``(len(a), len(b))``."""
    a2, b2 = _pair(a, b)
    return normalize(a2) @ normalize(b2).T


def dot_score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot-product matrix ``(len(a), len(b))``."""
    a2, b2 = _pair(a, b)
    return a2 @ b2.T


_DIRECT_ELEMENTS = 2**24


def euclidean_sim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Negative euclidean distance matrix (identical rows give exactly 0).

    Differences are taken directly for small inputs; larger ones expand ``|a|^2 + |b|^2 - 2ab`` in float64,
    so the cancellation error stays far below float32 resolution.
    """
    a2, b2 = _pair(a, b)
    if a2.shape[0] * b2.shape[0] * a2.shape[-1] <= _DIRECT_ELEMENTS:
        return -np.sqrt(np.square(a2[:, None, :] - b2[None, :, :]).sum(-1))
    a64, b64 = a2.astype(np.float64), b2.astype(np.float64)
    sq = (a64 * a64).sum(1)[:, None] + (b64 * b64).sum(1)[None, :] - 2 * a64 @ b64.T
    return (-np.sqrt(np.maximum(sq, 0))).astype(a2.dtype)


def manhattan_sim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Negative manhattan distance matrix (computed in row blocks to bound memory)."""
    a2, b2 = _pair(a, b)
    step = max(1, _DIRECT_ELEMENTS // max(1, b2.shape[0] * a2.shape[-1]))
    blocks = [-np.abs(a2[i:i + step, None, :] - b2[None, :, :]).sum(-1) for i in range(0, len(a2), step)]
    return np.concatenate(blocks) if blocks else np.zeros((0, len(b2)), dtype=a2.dtype)


def pairwise_cos_sim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of ``a[i]`` and ``b[i]``."""
    a2, b2 = _same_shape(a, b)
    return (normalize(a2) * normalize(b2)).sum(-1)


def pairwise_dot_score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot product of ``a[i]`` and ``b[i]``."""
    a2, b2 = _same_shape(a, b)
    return (a2 * b2).sum(-1)


def pairwise_euclidean_sim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Negative euclidean distance of ``a[i]`` and ``b[i]``."""
    a2, b2 = _same_shape(a, b)
    return -np.linalg.norm(a2 - b2, axis=-1)


def pairwise_manhattan_sim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Negative manhattan distance of ``a[i]`` and ``b[i]``."""
    a2, b2 = _same_shape(a, b)
    return -np.abs(a2 - b2).sum(-1)



def pairwise_angle_sim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """AnglE similarity ``|cos + sin|`` of ``x[i]`` and ``y[i]`` after L2 normalization (dims ``i`` and ``i + D/2`` paired)."""
    x2, y2 = _pair(x, y, pairwise=True)
    if x2.shape[1] % 2:
        x2 = np.pad(x2, ((0, 0), (0, 1)))
        y2 = np.pad(y2, ((0, 0), (0, 1)))
    nx, ny = normalize(x2), normalize(y2)
    half = nx.shape[1] // 2
    cosines = (nx * ny).sum(1)
    sines = (nx[:, half:] * ny[:, :half] - nx[:, :half] * ny[:, half:]).sum(1)
    return np.abs(cosines + sines)


SIMILARITY = {"cosine": cos_sim, "dot": dot_score, "euclidean": euclidean_sim, "manhattan": manhattan_sim}
PAIRWISE = {"cosine": pairwise_cos_sim, "dot": pairwise_dot_score, "euclidean": pairwise_euclidean_sim,
            "manhattan": pairwise_manhattan_sim}
