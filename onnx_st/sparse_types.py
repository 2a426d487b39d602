"""Compact sparse embeddings: indices and values per text, with conversions for search engines.

``SparseEmbeddings`` holds many texts in CSR form (``indptr``, ``indices``, ``values``);
``SparseVector`` is one text. Neither ever materializes the vocabulary-wide dense array unless
``to_dense()`` is called. ``to_scipy()`` needs scipy (imported only then).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .errors import InputError

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
