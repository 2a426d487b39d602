"""NumPy operations on sparse embeddings: top-k pruning, similarity without densifying, sparsity, decode."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import InputError
from .sparse_types import SparseEmbeddings, SparseVector

_PRODUCTS_PER_CHUNK = 4_000_000


def check_max_active_dims(value: object) -> int | None:
    """``None`` or a positive ``int``.

    Raises:
        InputError: 0, negative, a bool or a non-integer.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputError(f"max_active_dims must be a positive integer, got {value!r}")
    return int(value)


def dense_rows_to_sparse(rows: np.ndarray, max_active_dims: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(n, dim)`` pooled weights -> per row (sorted indices, values) of the non-zeros.

    With ``max_active_dims``, only the ``k`` largest absolute values of each row are kept, as
    sentence-transformers' ``select_max_active_dims``.
    """
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for row in rows:
        idx = np.flatnonzero(row)
        if max_active_dims is not None and len(idx) > max_active_dims:
            magnitude = np.abs(row[idx])
            keep = np.argpartition(-magnitude, max_active_dims - 1)[:max_active_dims]
            idx = np.sort(idx[keep])
        out.append((idx.astype(np.int32), row[idx].astype(np.float32)))
    return out


def _row_ids(x: SparseEmbeddings) -> np.ndarray:
    return np.repeat(np.arange(len(x), dtype=np.int64), x.active_dims())


def _shared_terms(a: SparseEmbeddings, b: SparseEmbeddings, op: Callable[[np.ndarray, np.ndarray], np.ndarray]
                  ) -> np.ndarray:
    """``out[i, j] = sum over shared columns c of op(a[i, c], b[j, c])``, chunked over the rows of ``a``."""
    out = np.zeros((len(a), len(b)), dtype=np.float64)
    if not a.nnz or not b.nnz:
        return out
    order = np.argsort(b.indices, kind="stable")
    b_cols, b_rows, b_vals = b.indices[order], _row_ids(b)[order], b.values[order].astype(np.float64)
    starts = np.searchsorted(b_cols, a.indices, side="left")
    counts = np.searchsorted(b_cols, a.indices, side="right") - starts
    a_rows = _row_ids(a)
    row_products = np.bincount(a_rows, weights=counts, minlength=len(a))
    lo = 0
    while lo < len(a):
        hi, budget = lo + 1, row_products[lo]
        while hi < len(a) and budget + row_products[hi] <= _PRODUCTS_PER_CHUNK:
            budget += row_products[hi]
            hi += 1
        e_lo, e_hi = a.indptr[lo], a.indptr[hi]
        c = counts[e_lo:e_hi]
        owner = np.repeat(np.arange(e_lo, e_hi), c)
        pos = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c) + starts[owner]
        terms = op(a.values[owner].astype(np.float64), b_vals[pos])
        flat = (a_rows[owner] - lo) * len(b) + b_rows[pos]
        out[lo:hi] = np.bincount(flat, weights=terms, minlength=(hi - lo) * len(b)).reshape(hi - lo, len(b))
        lo = hi
    return out


def _row_sums(x: SparseEmbeddings, values: np.ndarray) -> np.ndarray:
    return np.bincount(_row_ids(x), weights=values, minlength=len(x))


def _dims(a: SparseEmbeddings, b: SparseEmbeddings) -> None:
    if a.dim != b.dim:
        raise InputError(f"Embedding dimensions differ: {a.dim} and {b.dim}")


def sparse_similarity(a: SparseEmbeddings, b: SparseEmbeddings, name: str = "dot") -> np.ndarray:
    """All-pairs ``(len(a), len(b))`` float32 similarity: ``dot``, ``cosine``, ``euclidean`` or ``manhattan``."""
    _dims(a, b)
    va, vb = a.values.astype(np.float64), b.values.astype(np.float64)
    if name in ("dot", "cosine", "euclidean"):
        dot = _shared_terms(a, b, np.multiply)
        if name == "dot":
            return dot.astype(np.float32)
        sq_a, sq_b = _row_sums(a, va * va), _row_sums(b, vb * vb)
        if name == "cosine":
            norms = np.maximum(np.sqrt(sq_a), 1e-12)[:, None] * np.maximum(np.sqrt(sq_b), 1e-12)[None, :]
            return (dot / norms).astype(np.float32)
        return (-np.sqrt(np.maximum(sq_a[:, None] + sq_b[None, :] - 2 * dot, 0.0))).astype(np.float32)
    if name == "manhattan":  # |a|_1 + |b|_1 minus what the shared columns over-count
        shared = _shared_terms(a, b, lambda x, y: np.abs(x) + np.abs(y) - np.abs(x - y))
        l1 = _row_sums(a, np.abs(va))[:, None] + _row_sums(b, np.abs(vb))[None, :]
        return (-(l1 - shared)).astype(np.float32)
    raise InputError(f"Unknown similarity {name!r}; supported: cosine, dot, euclidean, manhattan")


def sparse_similarity_pairwise(a: SparseEmbeddings, b: SparseEmbeddings, name: str = "dot") -> np.ndarray:
    """Similarity of ``a[i]`` with ``b[i]``, shape ``(n,)``."""
    _dims(a, b)
    if len(a) != len(b):
        raise InputError(f"Pairwise similarity needs as many embeddings on each side, got {len(a)} and {len(b)}")
    keys_a = _row_ids(a) * a.dim + a.indices
    keys_b = _row_ids(b) * b.dim + b.indices
    _, ia, ib = np.intersect1d(keys_a, keys_b, assume_unique=True, return_indices=True)
    va, vb = a.values.astype(np.float64), b.values.astype(np.float64)
    rows = _row_ids(a)[ia]
    n = len(a)
    dot = np.bincount(rows, weights=va[ia] * vb[ib], minlength=n)
    sq_a, sq_b = _row_sums(a, va * va), _row_sums(b, vb * vb)
    if name == "dot":
        out = dot
    elif name == "cosine":
        out = dot / (np.maximum(np.sqrt(sq_a), 1e-12) * np.maximum(np.sqrt(sq_b), 1e-12))
    elif name == "euclidean":
        out = -np.sqrt(np.maximum(sq_a + sq_b - 2 * dot, 0.0))
    elif name == "manhattan":
        x, y = va[ia], vb[ib]
        shared = np.bincount(rows, weights=np.abs(x) + np.abs(y) - np.abs(x - y), minlength=n)
        out = -(_row_sums(a, np.abs(va)) + _row_sums(b, np.abs(vb)) - shared)
    else:
        raise InputError(f"Unknown similarity {name!r}; supported: cosine, dot, euclidean, manhattan")
    return out.astype(np.float32)


def sparsity(embeddings: SparseEmbeddings) -> dict[str, float]:
    """Mean active dimensions and mean sparsity ratio, as sentence-transformers' ``SparseEncoder.sparsity``."""
    if len(embeddings) == 0 or embeddings.dim == 0:
        return {"active_dims": 0.0, "sparsity_ratio": 1.0}
    mean = float(np.mean(embeddings.active_dims().astype(np.float32), dtype=np.float32))
    return {"active_dims": mean, "sparsity_ratio": 1.0 - mean / embeddings.dim}


def top_tokens(vector: SparseVector, top_k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of a vector's ``top_k`` largest weights (all if ``None``), largest first.

    Equal weights keep ascending index order.
    """
    order = np.argsort(-vector.values, kind="stable")
    if top_k is not None:
        order = order[:top_k]
    return vector.indices[order], vector.values[order]


def intersection(a: SparseVector, b: SparseEmbeddings) -> SparseEmbeddings:
    """Per row of ``b``, the element-wise product with ``a`` where it is positive."""
    if a.dim != b.dim:
        raise InputError(f"Vocab dimension mismatch: {a.dim} and {b.dim}")
    rows: list[SparseVector] = []
    for row in b:
        common, ia, ib = np.intersect1d(a.indices, row.indices, assume_unique=True, return_indices=True)
        values = a.values[ia] * row.values[ib]
        keep = values > 0
        rows.append(SparseVector(common[keep], values[keep], b.dim, b.vocab))
    return SparseEmbeddings.from_rows(rows, b.dim, b.vocab)
