"""``sentence_transformers.util``'s similarity helpers on NumPy arrays and onnx-st's sparse embeddings.

Each function takes dense arrays (lists, float16/32/64 arrays; sub-float32 inputs are scored in float32)
or :class:`~onnx_st.SparseEmbeddings` / :class:`~onnx_st.SparseVector` (scored on their entries, never
densified), and returns a NumPy array where sentence-transformers returns a tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np

from onnx_st import functional as F
from onnx_st.errors import InputError
from onnx_st.sparse_embeddings import (
    SparseEmbeddings,
    SparseVector,
    as_sparse,
    check_max_active_dims,
    sparse_similarity,
    sparse_similarity_pairwise,
)

Similarity = Callable[[Any, Any], np.ndarray]


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is onnx-st sparse embeddings (one vector, many, or a list of vectors)."""
    return isinstance(x, (SparseEmbeddings, SparseVector)) or (
        isinstance(x, (list, tuple)) and bool(x) and all(isinstance(e, SparseVector) for e in x))


def _dense_or_sparse(name: str, dense: Similarity, pairwise: bool = False) -> Similarity:
    def fn(a: Any, b: Any) -> np.ndarray:
        if is_sparse(a) or is_sparse(b):
            sa, sb = as_sparse(a)[0], as_sparse(b)[0]
            return (sparse_similarity_pairwise if pairwise else sparse_similarity)(sa, sb, name)
        return dense(a, b)

    fn.__name__ = dense.__name__
    fn.__qualname__ = dense.__name__
    fn.__doc__ = dense.__doc__
    return fn


cos_sim = _dense_or_sparse("cosine", F.cos_sim)
dot_score = _dense_or_sparse("dot", F.dot_score)
euclidean_sim = _dense_or_sparse("euclidean", F.euclidean_sim)
manhattan_sim = _dense_or_sparse("manhattan", F.manhattan_sim)
pairwise_cos_sim = _dense_or_sparse("cosine", F.pairwise_cos_sim, pairwise=True)
pairwise_dot_score = _dense_or_sparse("dot", F.pairwise_dot_score, pairwise=True)
pairwise_euclidean_sim = _dense_or_sparse("euclidean", F.pairwise_euclidean_sim, pairwise=True)
pairwise_manhattan_sim = _dense_or_sparse("manhattan", F.pairwise_manhattan_sim, pairwise=True)


def pytorch_cos_sim(a: Any, b: Any) -> np.ndarray:
    """Old name of :func:`cos_sim`."""
    return cos_sim(a, b)


def pairwise_angle_sim(x: Any, y: Any) -> np.ndarray:
    """AnglE similarity of ``x[i]`` and ``y[i]`` (sparse inputs are densified, as sentence-transformers does)."""
    dense = [as_sparse(v)[0].to_dense() if is_sparse(v) else v for v in (x, y)]
    return F.pairwise_angle_sim(dense[0], dense[1])


class SimilarityFunction(Enum):
    """Similarity names, as ``sentence_transformers.SimilarityFunction``."""

    COSINE = "cosine"
    DOT_PRODUCT = "dot"
    DOT = "dot"  # alias of DOT_PRODUCT
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"

    @staticmethod
    def to_similarity_fn(similarity_function: str | SimilarityFunction) -> Similarity:
        """The all-pairs function of a name or member.

        Raises:
            InputError: an unknown name.
        """
        return _ALL_PAIRS[_member(similarity_function)]

    @staticmethod
    def to_similarity_pairwise_fn(similarity_function: str | SimilarityFunction) -> Similarity:
        """The pairwise (``a[i]`` with ``b[i]``) function of a name or member."""
        return _PAIRWISE[_member(similarity_function)]

    @staticmethod
    def possible_values() -> list[str]:
        """The names: ``['cosine', 'dot', 'euclidean', 'manhattan']``."""
        return [m.value for m in SimilarityFunction]


def _member(value: str | SimilarityFunction) -> SimilarityFunction:
    try:
        return SimilarityFunction(value)
    except ValueError:
        raise InputError(f"Unknown similarity function {value!r}; use one of "
                         f"{SimilarityFunction.possible_values()}") from None


_ALL_PAIRS = {SimilarityFunction.COSINE: cos_sim, SimilarityFunction.DOT_PRODUCT: dot_score,
              SimilarityFunction.EUCLIDEAN: euclidean_sim, SimilarityFunction.MANHATTAN: manhattan_sim}
_PAIRWISE = {SimilarityFunction.COSINE: pairwise_cos_sim, SimilarityFunction.DOT_PRODUCT: pairwise_dot_score,
             SimilarityFunction.EUCLIDEAN: pairwise_euclidean_sim,
             SimilarityFunction.MANHATTAN: pairwise_manhattan_sim}


def normalize_embeddings(embeddings: Any) -> Any:
    """L2-normalize each row (sparse embeddings stay sparse)."""
    if is_sparse(embeddings):
        sparse = as_sparse(embeddings)[0]
        norms = np.sqrt(np.add.reduceat(np.square(sparse.values.astype(np.float64)), sparse.indptr[:-1])
                        if sparse.nnz else np.zeros(len(sparse)))
        norms = np.where(np.diff(sparse.indptr) > 0, norms, 1.0)
        scale = np.repeat(1.0 / np.maximum(norms, 1e-12), np.diff(sparse.indptr))
        return SparseEmbeddings(sparse.indptr, sparse.indices, (sparse.values * scale).astype(np.float32),
                                sparse.dim, sparse.vocab)
    return F.normalize(F._as_2d(embeddings))


def truncate_embeddings(embeddings: np.ndarray, truncate_dim: int | None) -> np.ndarray:
    """The first ``truncate_dim`` dimensions (all of them for ``None`` or a larger value)."""
    return embeddings[..., :truncate_dim]


def select_max_active_dims(embeddings: Any, max_active_dims: int | None) -> np.ndarray:
    """A dense copy keeping only each row's ``max_active_dims`` largest values by magnitude (``None``: unchanged).

    Raises:
        InputError: ``max_active_dims`` below 1.
    """
    if max_active_dims is None:
        return embeddings  # type: ignore[no-any-return]
    k = check_max_active_dims(max_active_dims)
    arr = as_sparse(embeddings)[0].to_dense() if is_sparse(embeddings) else np.asarray(embeddings)
    assert k is not None
    k = min(k, arr.shape[-1])
    top = np.argpartition(-np.abs(arr), k - 1, axis=-1)[..., :k]
    out = np.zeros_like(arr)
    np.put_along_axis(out, top, np.take_along_axis(arr, top, -1), -1)
    return out
