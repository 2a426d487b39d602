"""Compact sparse embeddings: indices and values per text, with conversions for search engines.

``SparseEmbeddings`` holds many texts in CSR form (``indptr``, ``indices``, ``values``);
``SparseVector`` is one text. Neither ever materializes the vocabulary-wide dense array unless
``to_dense()`` is called. ``to_scipy()`` needs scipy (imported only then).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from onnx_st.errors import InputError

Vocab = Sequence[str]


def _token_dict(indices: np.ndarray, values: np.ndarray, vocab: Vocab | None, dots: str | None = None
                ) -> dict[str, float]:
    if vocab is None:
        raise InputError("Token names need the model's vocabulary: use the vectors SparseEncoder.encode returns")
    tokens = (vocab[int(i)] for i in indices)
    if dots is not None:
        tokens = (t.replace(".", dots) for t in tokens)
    return dict(zip(tokens, values.tolist()))


class SparseVector:
    """One sparse embedding: sorted ``indices`` (int32) and their ``values`` (float32) over ``dim`` dimensions."""

    __slots__ = ("dim", "indices", "values", "vocab")

    def __init__(self, indices: np.ndarray, values: np.ndarray, dim: int, vocab: Vocab | None = None) -> None:
        self.indices = np.asarray(indices, dtype=np.int32)
        self.values = np.asarray(values, dtype=np.float32)
        self.dim = int(dim)
        self.vocab = vocab

    @property
    def shape(self) -> tuple[int]:
        """``(dim,)``."""
        return (self.dim,)

    @property
    def nnz(self) -> int:
        """Number of active (non-zero) dimensions."""
        return len(self.indices)

    ndim = 1

    def to_dense(self) -> np.ndarray:
        """The ``(dim,)`` float32 array."""
        dense = np.zeros(self.dim, dtype=np.float32)
        dense[self.indices] = self.values
        return dense

    def to_scipy(self) -> Any:
        """A ``(1, dim)`` ``scipy.sparse.csr_matrix``."""
        return SparseEmbeddings.from_rows([self], self.dim).to_scipy()

    def to_qdrant(self) -> dict[str, list[Any]]:
        """``{"indices": [...], "values": [...]}``, the fields of ``qdrant_client.models.SparseVector``."""
        return {"indices": self.indices.tolist(), "values": self.values.tolist()}

    def to_dict(self) -> dict[str, float]:
        """``{token: weight}`` (OpenSearch ``rank_features`` and neural sparse documents)."""
        return _token_dict(self.indices, self.values, self.vocab)

    to_opensearch = to_dict

    def to_elasticsearch(self) -> dict[str, float]:
        """``{token: weight}`` for an Elasticsearch ``sparse_vector`` field; dots become ``_`` (ES forbids them)."""
        return _token_dict(self.indices, self.values, self.vocab, dots="_")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, SparseVector) and self.dim == other.dim
                and np.array_equal(self.indices, other.indices) and np.array_equal(self.values, other.values))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SparseVector(nnz={self.nnz}, dim={self.dim})"


class SparseEmbeddings:
    """Sparse embeddings of ``n`` texts in CSR form; indexing gives a :class:`SparseVector`.

    Args:
        indptr: ``(n + 1,)`` offsets; row ``i`` is ``indices[indptr[i]:indptr[i + 1]]``.
        indices: sorted column ids of each row (int32).
        values: float32 weights.
        dim: number of columns (the vocabulary size).
        vocab: token string of each column, for ``decode``-style conversions.
    """

    ndim = 2

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, dim: int,
                 vocab: Vocab | None = None) -> None:
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int32)
        self.values = np.asarray(values, dtype=np.float32)
        self.dim = int(dim)
        self.vocab = vocab
        if len(self.indptr) < 1 or self.indptr[-1] != len(self.indices) or len(self.indices) != len(self.values):
            raise InputError("SparseEmbeddings: indptr, indices and values do not fit together")

    @classmethod
    def from_rows(cls, rows: Sequence[SparseVector], dim: int, vocab: Vocab | None = None) -> SparseEmbeddings:
        """Stack sparse vectors."""
        counts = np.fromiter((r.nnz for r in rows), dtype=np.int64, count=len(rows))
        indptr = np.concatenate([[0], np.cumsum(counts)])
        indices = np.concatenate([r.indices for r in rows]) if rows else np.zeros(0, np.int32)
        values = np.concatenate([r.values for r in rows]) if rows else np.zeros(0, np.float32)
        return cls(indptr, indices, values, dim, vocab)

    @classmethod
    def from_dense(cls, dense: np.ndarray, vocab: Vocab | None = None) -> SparseEmbeddings:
        """From a ``(n, dim)`` array: its non-zero entries."""
        arr = np.asarray(dense, dtype=np.float32)
        arr = arr[None, :] if arr.ndim == 1 else arr
        if arr.ndim != 2:
            raise InputError(f"Expected a 1D or 2D array, got {arr.ndim}D")
        rows, cols = np.nonzero(arr)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(arr)))])
        return cls(indptr, cols, arr[rows, cols], arr.shape[1], vocab)

    @classmethod
    def from_scipy(cls, matrix: Any, vocab: Vocab | None = None) -> SparseEmbeddings:
        """From any ``scipy.sparse`` matrix or array."""
        csr = matrix.tocsr()
        csr.sum_duplicates()
        csr.sort_indices()
        return cls(csr.indptr, csr.indices, csr.data, csr.shape[1], vocab)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, dim)``."""
        return (len(self), self.dim)

    @property
    def nnz(self) -> int:
        """Active dimensions over all rows."""
        return len(self.indices)

    def active_dims(self) -> np.ndarray:
        """Active dimensions of each row."""
        return np.diff(self.indptr)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def row(self, i: int) -> SparseVector:
        """Row ``i`` (negative counts from the end)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} out of range for {n} embeddings")
        i %= n
        lo, hi = self.indptr[i], self.indptr[i + 1]
        return SparseVector(self.indices[lo:hi], self.values[lo:hi], self.dim, self.vocab)

    def __getitem__(self, key: int | slice | Sequence[int] | np.ndarray) -> Any:
        if isinstance(key, (int, np.integer)):
            return self.row(int(key))
        if isinstance(key, slice):
            picked: Sequence[int] | np.ndarray = range(len(self))[key]
        else:
            picked = np.asarray(key).reshape(-1)
            picked = np.flatnonzero(picked) if picked.dtype == np.bool_ else picked
        return SparseEmbeddings.from_rows([self.row(int(i)) for i in picked], self.dim, self.vocab)

    def __iter__(self) -> Iterator[SparseVector]:
        return (self.row(i) for i in range(len(self)))

    def to_dense(self) -> np.ndarray:
        """The ``(n, dim)`` float32 array (memory: ``n * dim * 4`` bytes)."""
        dense = np.zeros(self.shape, dtype=np.float32)
        dense[np.repeat(np.arange(len(self)), self.active_dims()), self.indices] = self.values
        return dense

    def to_scipy(self) -> Any:
        """A ``scipy.sparse.csr_matrix`` of shape ``(n, dim)`` (scipy must be installed)."""
        try:
            from scipy.sparse import csr_matrix
        except ImportError as exc:
            raise ImportError("to_scipy() needs scipy: pip install scipy") from exc
        return csr_matrix((self.values, self.indices, self.indptr), shape=self.shape)

    def to_qdrant(self) -> list[dict[str, list[Any]]]:
        """One ``{"indices", "values"}`` dict per text (``qdrant_client.models.SparseVector(**d)``)."""
        return [row.to_qdrant() for row in self]

    def to_dicts(self) -> list[dict[str, float]]:
        """One ``{token: weight}`` dict per text (OpenSearch)."""
        return [row.to_dict() for row in self]

    to_opensearch = to_dicts

    def to_elasticsearch(self) -> list[dict[str, float]]:
        """One ``{token: weight}`` dict per text, dots in tokens replaced by ``_`` (Elasticsearch)."""
        return [row.to_elasticsearch() for row in self]

    def __repr__(self) -> str:
        return f"SparseEmbeddings(n={len(self)}, dim={self.dim}, nnz={self.nnz})"


def as_sparse(embeddings: Any, vocab: Vocab | None = None) -> tuple[SparseEmbeddings, bool]:
    """Coerce sparse or dense embeddings to :class:`SparseEmbeddings`; the flag says the input was one vector.

    Accepts SparseEmbeddings, SparseVector, a list of SparseVector, NumPy arrays (1D/2D), scipy
    sparse matrices, and objects with ``to_dense()`` or ``numpy()`` (torch tensors).

    Raises:
        InputError: anything else, or vectors of different dimensions.
    """
    if isinstance(embeddings, SparseEmbeddings):
        return embeddings, False
    if isinstance(embeddings, SparseVector):
        return SparseEmbeddings.from_rows([embeddings], embeddings.dim, embeddings.vocab or vocab), True
    if isinstance(embeddings, (list, tuple)) and embeddings and all(isinstance(e, SparseVector) for e in embeddings):
        dims = {e.dim for e in embeddings}
        if len(dims) != 1:
            raise InputError(f"Sparse vectors of different dimensions: {sorted(dims)}")
        return SparseEmbeddings.from_rows(list(embeddings), dims.pop(), embeddings[0].vocab or vocab), False
    if hasattr(embeddings, "tocsr"):
        return SparseEmbeddings.from_scipy(embeddings, vocab), False
    if hasattr(embeddings, "to_dense") and hasattr(embeddings, "is_sparse"):  # torch tensors
        embeddings = embeddings.to_dense().detach().cpu().numpy()
    arr = np.asarray(embeddings)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or arr.ndim not in (1, 2):
        raise InputError(f"Expected sparse embeddings or a 1D/2D numeric array, got {type(embeddings).__name__}")
    return SparseEmbeddings.from_dense(arr, vocab), arr.ndim == 1


# Operations: top-k pruning, similarity without densifying, sparsity, decode.

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
