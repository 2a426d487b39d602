"""Search over embeddings, as ``sentence_transformers.util`` does it: semantic search, paraphrase mining, communities."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np

from onnx_st.errors import InputError
from onnx_st.similarity import cos_sim, is_sparse, normalize_embeddings

Score = Callable[[Any, Any], np.ndarray]


def _rows(embeddings: Any) -> Any:
    """Dense embeddings as a 2-D array (sparse ones are kept as they are)."""
    if is_sparse(embeddings):
        return embeddings
    arr = np.asarray(embeddings)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise InputError("Embeddings must be a numeric array")
    return arr[None, :] if arr.ndim == 1 else arr


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


def semantic_search(query_embeddings: Any, corpus_embeddings: Any, query_chunk_size: int = 100,
                    corpus_chunk_size: int = 500000, top_k: int = 10, score_function: Score = cos_sim,
                    ) -> list[list[dict[str, int | float]]]:
    """Top-k corpus entries for each query, best first: ``[[{"corpus_id": int, "score": float}, ...], ...]``.

    Dense arrays or onnx-st sparse embeddings; ``score_function`` is ``cos_sim`` (default), ``dot_score`` or
    any ``(a, b) -> (len(a), len(b))`` function.

    Raises:
        InputError: ``top_k`` or a chunk size below 1, or mismatched dimensions.

    Example:
        >>> semantic_search(np.eye(2), np.eye(2), top_k=1)
        [[{'corpus_id': 0, 'score': 1.0}], [{'corpus_id': 1, 'score': 1.0}]]
    """
    for name, value in (("top_k", top_k), ("query_chunk_size", query_chunk_size),
                        ("corpus_chunk_size", corpus_chunk_size)):
        _positive(name, value)
    queries, corpus = _rows(query_embeddings), _rows(corpus_embeddings)
    if len(corpus) and queries.shape[-1] != corpus.shape[-1]:
        raise InputError(f"Query dimension {queries.shape[-1]} does not match corpus dimension {corpus.shape[-1]}")
    heaps: list[list[tuple[float, int]]] = [[] for _ in range(len(queries))]
    for c_start in range(0, len(corpus), corpus_chunk_size):
        c_chunk = corpus[c_start:c_start + corpus_chunk_size]
        for q_start in range(0, len(queries), query_chunk_size):
            scores = np.asarray(score_function(queries[q_start:q_start + query_chunk_size], c_chunk))
            k = min(top_k, scores.shape[1])
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else \
                np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
            for offset, (row, ids) in enumerate(zip(scores, top)):
                heap = heaps[q_start + offset]
                for i in ids:
                    item = (float(row[i]), int(i) + c_start)
                    if len(heap) < top_k:
                        heapq.heappush(heap, item)
                    else:
                        heapq.heappushpop(heap, item)
    return [[{"corpus_id": cid, "score": score} for score, cid in sorted(heap, key=lambda x: x[0], reverse=True)]
            for heap in heaps]


information_retrieval = semantic_search
"""Deprecated name of :func:`semantic_search`."""


def paraphrase_mining(model: Any, sentences: list[str], show_progress_bar: bool = False, batch_size: int = 32,
                      query_chunk_size: int = 5000, corpus_chunk_size: int = 100000, max_pairs: int = 500000,
                      top_k: int = 100, score_function: Score = cos_sim, truncate_dim: int | None = None,
                      prompt_name: str | None = None, prompt: str | None = None) -> list[list[float | int]]:
    """Pairs of texts with the highest similarity: ``[[score, i, j], ...]`` best first (``i < j``)."""
    embeddings = model.encode(sentences, show_progress_bar=show_progress_bar, batch_size=batch_size,
                              truncate_dim=truncate_dim, prompt_name=prompt_name, prompt=prompt)
    return paraphrase_mining_embeddings(embeddings, query_chunk_size=query_chunk_size,
                                        corpus_chunk_size=corpus_chunk_size, max_pairs=max_pairs, top_k=top_k,
                                        score_function=score_function)


def _top(values: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` largest values (descending) and their ids."""
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(values, order, 1), np.take_along_axis(ids, order, 1)


def paraphrase_mining_embeddings(embeddings: Any, query_chunk_size: int = 5000, corpus_chunk_size: int = 100000,
                                 max_pairs: int = 500000, top_k: int = 100, score_function: Score = cos_sim,
                                 ) -> list[list[float | int]]:
    """Most similar pairs among ``embeddings``: ``[[score, i, j], ...]`` best first, at most ``max_pairs``."""
    for name, value in (("top_k", top_k), ("max_pairs", max_pairs), ("query_chunk_size", query_chunk_size),
                        ("corpus_chunk_size", corpus_chunk_size)):
        _positive(name, value)
    embeddings = _rows(embeddings)
    pairs: list[tuple[float, int, int]] = []
    queued: set[tuple[int, int]] = set()
    min_score = float("-inf")
    for q_start in range(0, len(embeddings), query_chunk_size):
        queries = embeddings[q_start:q_start + query_chunk_size]
        best_v: np.ndarray | None = None
        best_i = np.zeros((0, 0), dtype=np.int64)
        for c_start in range(0, len(embeddings), corpus_chunk_size):
            scores = np.asarray(score_function(queries, embeddings[c_start:c_start + corpus_chunk_size]))
            ids = np.broadcast_to(np.arange(scores.shape[1]) + c_start, scores.shape)
            values, idx = _top(scores, ids, top_k + 1)
            if best_v is not None:
                values, idx = _top(np.concatenate([best_v, values], 1), np.concatenate([best_i, idx], 1), top_k + 1)
            best_v, best_i = values, idx
        assert best_v is not None
        for row, (row_values, row_ids) in enumerate(zip(best_v.tolist(), best_i.tolist())):
            i = q_start + row
            for j, score in [(j, s) for j, s in zip(row_ids, row_values) if j != i][:top_k]:
                if score <= min_score:
                    continue
                pair = (i, j) if i < j else (j, i)
                if pair in queued:
                    continue
                queued.add(pair)
                if len(pairs) < max_pairs:
                    heapq.heappush(pairs, (score, *pair))
                else:
                    evicted = heapq.heappushpop(pairs, (score, *pair))
                    queued.discard(evicted[1:])
                    min_score = evicted[0]
    return sorted(([score, i, j] for score, i, j in pairs), key=lambda x: x[0], reverse=True)


def community_detection(embeddings: Any, threshold: float = 0.75, min_community_size: int = 10,
                        batch_size: int = 1024, show_progress_bar: bool = False) -> list[list[int]]:
    """Groups whose cosine similarity to a central embedding is at least ``threshold``, largest first.

    Each community lists its central point first, then the other members by decreasing similarity (equal
    similarities in index order); only communities of at least ``min_community_size`` members are kept, and no
    embedding is in two communities. ``show_progress_bar`` is accepted for sentence-transformers code.
    """
    _positive("min_community_size", min_community_size)
    _positive("batch_size", batch_size)
    if len(embeddings) == 0:
        return []
    emb = _rows(embeddings)
    emb = emb.to_dense() if is_sparse(emb) else emb
    if len(emb) < min_community_size:
        return []
    emb = normalize_embeddings(emb)
    limit = np.float32(threshold)  # compared as a float32 number, as sentence-transformers compares it
    n = len(emb)
    sort_max_size = min(max(2 * min_community_size, 50), n)
    found: list[tuple[int, np.ndarray]] = []
    for start in range(0, n, batch_size):
        scores = emb[start:start + batch_size] @ emb.T
        kth = -np.partition(-scores, min_community_size - 1, axis=1)[:, min_community_size - 1]
        for i in np.flatnonzero(kth >= limit):
            row = scores[i]
            order = np.argsort(-row, kind="stable")
            while row[order[sort_max_size - 1]] >= limit and sort_max_size < n:
                sort_max_size = min(2 * sort_max_size, n)
            top = order[:sort_max_size]
            found.append((start + int(i), top[row[top] >= limit].astype(np.uint32)))
    found.sort(key=lambda x: len(x[1]), reverse=True)
    used = np.zeros(n, dtype=bool)
    communities: list[list[int]] = []
    for center, members in found:
        if used[center]:
            continue
        free = members[~used[members]]
        if len(free) >= min_community_size:
            chosen = [center] + free[free != center].tolist()
            communities.append(chosen)
            used[chosen] = True
    return sorted(communities, key=len, reverse=True)
