"""MaxSim (late-interaction) scoring in NumPy with bounded memory, and Qdrant's multivector format.

A multi-vector embedding is a ``(tokens, dim)`` matrix. Collections are lists of such matrices, a
padded ``(n, tokens, dim)`` array (all-zero rows are padding) or one ``(tokens, dim)`` matrix (a
collection of one), as in sentence-transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from onnx_st.errors import InputError

DEFAULT_CHUNK_ELEMENTS = 16_000_000  # float32 similarities held at once: 64 MB
EMPTY_DOCUMENT_SCORE = -1e9  # a document without any token vector (sentence-transformers' value)

MultiVectors = Sequence[Any] | np.ndarray


def as_multi_vectors(embeddings: MultiVectors, name: str = "embeddings") -> list[np.ndarray]:
    """Normalize a collection to a list of float32 ``(tokens, dim)`` matrices (padding rows of 3D input dropped).

    Raises:
        InputError: not a list of 2D matrices, a 3D array or a 2D matrix, or mixed dimensions.
    """
    if isinstance(embeddings, np.ndarray) or (hasattr(embeddings, "__array__") and not isinstance(embeddings, list)):
        array = np.asarray(embeddings)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3:
            raise InputError(f"{name} must be a list of (tokens, dim) matrices or a (n, tokens, dim) array, "
                             f"got shape {array.shape}")
        array = array.astype(np.float32, copy=False)
        return [row[row.any(axis=-1)] for row in array]
    if isinstance(embeddings, (str, bytes)) or not isinstance(embeddings, Sequence):
        raise InputError(f"{name} must be a list of (tokens, dim) matrices, got {type(embeddings).__name__}")
    items = [np.asarray(e, dtype=np.float32) for e in embeddings]
    dims = {e.shape[-1] for e in items if e.ndim == 2 and len(e)}
    if any(e.ndim != 2 for e in items) or len(dims) > 1:
        raise InputError(f"{name} must be (tokens, dim) matrices of one dim, got shapes {[e.shape for e in items][:5]}")
    return items


def _check_dims(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    dims = {e.shape[-1] for e in a + b if len(e)}
    if len(dims) > 1:
        raise InputError(f"Query and document vectors have different dimensions: {sorted(dims)}")


def _chunks(widths: Sequence[int], per_token: int, budget: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` ranges whose summed width x ``per_token`` stays under ``budget`` (>= 1 item)."""
    ranges, start, total = [], 0, 0
    for i, width in enumerate(widths):
        if i > start and (total + width) * per_token > budget:
            ranges.append((start, i))
            start, total = i, 0
        total += width
    ranges.append((start, len(widths)))
    return ranges


def _score_block(queries: list[np.ndarray], documents: list[np.ndarray]) -> np.ndarray:
    """``(len(queries), len(documents))`` MaxSim of one block: every document has at least one vector."""
    q_lengths = [len(q) for q in queries]
    d_lengths = [len(d) for d in documents]
    q_flat = np.concatenate(queries) if sum(q_lengths) else np.zeros((0, documents[0].shape[1]), np.float32)
    sims = q_flat @ np.concatenate(documents).T  # (query tokens, document tokens)
    d_starts = np.concatenate([[0], np.cumsum(d_lengths)[:-1]])
    best = np.maximum.reduceat(sims, d_starts, axis=1) if len(q_flat) else sims[:, :len(documents)]
    q_starts = np.concatenate([[0], np.cumsum(q_lengths)[:-1]])
    out = np.zeros((len(queries), len(documents)), dtype=np.float32)
    nonempty = np.array(q_lengths) > 0
    if nonempty.any():
        out[nonempty] = np.add.reduceat(best, q_starts[nonempty], axis=0)
    return out


def maxsim(a: MultiVectors, b: MultiVectors, *, length_normalize: bool = False,
           chunk_elements: int | None = None) -> np.ndarray:
    """All-pairs MaxSim: ``scores[i, j] = sum over query tokens of max over document tokens of a_i . b_j``.

    Documents are scored in chunks so that at most ``chunk_elements`` similarities exist at once,
    whatever the number of documents. Documents without any vector score ``-1e9``.

    Args:
        a: queries; b: documents (lists of ``(tokens, dim)`` matrices, a padded 3D array or one matrix).
        length_normalize: divide by each query's token count (MeanMaxSim).
        chunk_elements: memory budget in float32 elements (default 16 million, 64 MB).

    Returns:
        ``(len(a), len(b))`` float32 array.

    Example:
        >>> maxsim([np.eye(2)], [np.eye(2), np.ones((1, 2))]).round(2).tolist()
        [[2.0, 2.0]]
    """
    queries, documents = as_multi_vectors(a, "a"), as_multi_vectors(b, "b")
    _check_dims(queries, documents)
    budget = _budget(chunk_elements)
    scores = np.full((len(queries), len(documents)), EMPTY_DOCUMENT_SCORE, dtype=np.float32)
    keep = np.array([len(d) > 0 for d in documents], dtype=bool)
    kept = [d for d in documents if len(d)]
    if not queries or not kept:
        return scores if not len(queries) or not len(documents) else _normalized(scores, queries, length_normalize)
    kept_index = np.flatnonzero(keep)
    q_widths = [max(len(q), 1) for q in queries]
    d_widths = [len(d) for d in kept]
    for q_start, q_stop in _chunks(q_widths, max(d_widths), budget):
        q_tokens = sum(q_widths[q_start:q_stop])
        for d_start, d_stop in _chunks(d_widths, q_tokens, budget):
            block = _score_block(queries[q_start:q_stop], kept[d_start:d_stop])
            scores[q_start:q_stop, kept_index[d_start:d_stop]] = block
    return _normalized(scores, queries, length_normalize)


def maxsim_pairwise(a: MultiVectors, b: MultiVectors, *, length_normalize: bool = False) -> np.ndarray:
    """MaxSim of ``a[i]`` with ``b[i]`` for each ``i``; returns a ``(n,)`` float32 array.

    Raises:
        InputError: ``a`` and ``b`` hold different numbers of items.
    """
    queries, documents = as_multi_vectors(a, "a"), as_multi_vectors(b, "b")
    if len(queries) != len(documents):
        raise InputError(f"a and b must hold the same number of items, got {len(queries)} and {len(documents)}")
    _check_dims(queries, documents)
    scores = np.array([EMPTY_DOCUMENT_SCORE if not len(d) else float((q @ d.T).max(axis=1).sum()) if len(q) else 0.0
                       for q, d in zip(queries, documents)], dtype=np.float32)
    return _normalized(scores[:, None], queries, length_normalize)[:, 0]


def mean_maxsim(a: MultiVectors, b: MultiVectors, **kwargs: Any) -> np.ndarray:
    """:func:`maxsim` divided by each query's token count."""
    return maxsim(a, b, length_normalize=kwargs.pop("length_normalize", True), **kwargs)


def mean_maxsim_pairwise(a: MultiVectors, b: MultiVectors, **kwargs: Any) -> np.ndarray:
    """:func:`maxsim_pairwise` divided by each query's token count."""
    return maxsim_pairwise(a, b, length_normalize=kwargs.pop("length_normalize", True), **kwargs)


def _budget(chunk_elements: int | None) -> int:
    if chunk_elements is None:
        return DEFAULT_CHUNK_ELEMENTS
    if isinstance(chunk_elements, bool) or not isinstance(chunk_elements, int) or chunk_elements < 1:
        raise InputError(f"chunk_elements must be a positive integer, got {chunk_elements!r}")
    return chunk_elements


def _normalized(scores: np.ndarray, queries: list[np.ndarray], length_normalize: bool) -> np.ndarray:
    if not length_normalize:
        return scores
    counts = np.array([max(len(q), 1) for q in queries], dtype=np.float32)
    return (scores / counts[:, None]).astype(np.float32)


def to_qdrant_multivector(embeddings: MultiVectors) -> list[list[list[float]]]:
    """Qdrant's multivector format (one list of vectors per point) for a collection of embeddings.

    Use with a collection created with ``MultiVectorConfig(comparator=MultiVectorComparator.MAX_SIM)``.

    Example:
        >>> to_qdrant_multivector([np.ones((2, 3))])
        [[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]]
    """
    return [e.tolist() for e in as_multi_vectors(embeddings)]
