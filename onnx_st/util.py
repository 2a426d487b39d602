"""Helpers users know from ``sentence_transformers.util``: similarity and semantic search."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import InputError
from .functional import cos_sim, dot_score, normalize

__all__ = ["cos_sim", "dot_score", "normalize_embeddings", "semantic_search", "similarity_fn"]


def normalize_embeddings(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalize each row."""
    return normalize(np.asarray(embeddings, dtype=np.float32))


def semantic_search(query_embeddings: np.ndarray, corpus_embeddings: np.ndarray, query_chunk_size: int = 100,
                    corpus_chunk_size: int = 500000, top_k: int = 10,
                    score_function: Callable[[np.ndarray, np.ndarray], np.ndarray] = cos_sim,
                    ) -> list[list[dict[str, int | float]]]:
    """Top-k corpus entries for each query, as sentence-transformers returns them.

    Args:
        query_embeddings: ``(q, dim)`` or ``(dim,)``.
        corpus_embeddings: ``(c, dim)``.
        top_k: hits per query (at most the corpus size).
        score_function: ``cos_sim`` (default) or ``dot_score`` or any ``(a, b) -> (len(a), len(b))``.

    Returns:
        One list per query of ``{"corpus_id": int, "score": float}``, best first.

    Raises:
        InputError: ``top_k`` below 1 or mismatched dimensions.

    Example:
        >>> semantic_search(np.eye(2), np.eye(2), top_k=1)
        [[{'corpus_id': 0, 'score': 1.0}], [{'corpus_id': 1, 'score': 1.0}]]
    """
    if not isinstance(top_k, int) or top_k < 1:
        raise InputError(f"top_k must be a positive integer, got {top_k!r}")
    queries = np.asarray(query_embeddings, dtype=np.float32)
    queries = queries[None, :] if queries.ndim == 1 else queries
    corpus = np.asarray(corpus_embeddings, dtype=np.float32)
    corpus = corpus[None, :] if corpus.ndim == 1 else corpus
    if len(corpus) and queries.shape[-1] != corpus.shape[-1]:
        raise InputError(f"Query dimension {queries.shape[-1]} does not match corpus dimension {corpus.shape[-1]}")
    results: list[list[dict[str, int | float]]] = []
    for q_start in range(0, len(queries), query_chunk_size):
        q_chunk = queries[q_start:q_start + query_chunk_size]
        scores = np.concatenate([score_function(q_chunk, corpus[c:c + corpus_chunk_size])
                                 for c in range(0, len(corpus), corpus_chunk_size)] or [np.zeros((len(q_chunk), 0))],
                                axis=1)
        k = min(top_k, scores.shape[1])
        for row in scores:
            top = np.argpartition(-row, k - 1)[:k] if k else np.array([], dtype=np.int64)
            top = top[np.argsort(-row[top], kind="stable")]
            results.append([{"corpus_id": int(i), "score": float(row[i])} for i in top])
    return results


def similarity_fn(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The all-pairs function of a similarity name."""
    from .functional import SIMILARITY

    if name not in SIMILARITY:
        raise InputError(f"Unknown similarity {name!r}; known: {sorted(SIMILARITY)}")
    return SIMILARITY[name]


