"""Inference steps the routes share: validate, count tokens, queue in the batcher, shape results."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..sparse_types import SparseVector
from .errors import ApiError
from .inference import check_prompt, embed_key, predict_key, prompt_text, sparse_key, token_vectors_key
from .registry import ModelEntry


def _ready(entry: ModelEntry) -> tuple[Any, Any, Any]:
    assert entry.model is not None and entry.counter is not None and entry.batcher is not None
    return entry.model, entry.counter, entry.batcher


def _direction(direction: str) -> str:
    return direction.lower()


async def embed_rows(entry: ModelEntry, texts: list[str], *, prompt_name: str | None = None, normalize: bool = False,
                     dimensions: int | None = None, truncate: bool = True,
                     direction: str = "right") -> tuple[list[np.ndarray], int]:
    """Dense embeddings of ``texts`` (merged with other requests) and the tokens they took."""
    model, counter, batcher = _ready(entry)
    check_prompt(model, prompt_name)
    dim = model.get_embedding_dimension()
    if dimensions is not None and dim is not None and dimensions > dim:
        raise ApiError(422, f"dimensions must be at most {dim}, got {dimensions}", "validation")
    prompt = prompt_text(model, prompt_name)
    tokens = counter.check([prompt + t for t in texts], truncate)
    key = embed_key(prompt_name, normalize, dimensions, _direction(direction))
    return await batcher.submit(key, texts, tokens), tokens


async def sparse_rows(entry: ModelEntry, texts: list[str], *, prompt_name: str | None = None, truncate: bool = True,
                      direction: str = "right") -> tuple[list[SparseVector], int]:
    """Sparse embeddings of ``texts`` and the tokens they took."""
    model, counter, batcher = _ready(entry)
    check_prompt(model, prompt_name)
    prompt = prompt_text(model, prompt_name)
    tokens = counter.check([prompt + t for t in texts], truncate)
    return await batcher.submit(sparse_key(prompt_name, _direction(direction)), texts, tokens), tokens


async def token_vector_rows(entry: ModelEntry, texts: list[str], *, prompt_name: str | None = None,
                            truncate: bool = True, direction: str = "right") -> tuple[list[np.ndarray], int]:
    """``(tokens, dim)`` token vectors of each text (multi-vector or dense models) and the tokens they took."""
    model, counter, batcher = _ready(entry)
    if entry.kind.name not in ("multi-vector", "dense"):
        raise ApiError(424, f"model {entry.model_id} is a {entry.kind} model: it has no token vectors", "backend")
    check_prompt(model, prompt_name)
    prompt = prompt_text(model, prompt_name)
    tokens = counter.check([prompt + t for t in texts], truncate)
    return await batcher.submit(token_vectors_key(prompt_name, _direction(direction)), texts, tokens), tokens


async def pair_scores(entry: ModelEntry, pairs: list[tuple[str, str]], *, raw_scores: bool = False,
                      truncate: bool = True, direction: str = "right") -> tuple[list[np.ndarray], int]:
    """Cross-encoder scores of ``pairs`` (the model's activation unless ``raw_scores``)."""
    _, counter, batcher = _ready(entry)
    tokens = counter.check(pairs, truncate)
    return await batcher.submit(predict_key(raw_scores, _direction(direction)), pairs, tokens), tokens


async def rank(entry: ModelEntry, query: str, texts: list[str], *, raw_scores: bool = False,
               return_text: bool = False, truncate: bool = True, direction: str = "right"
               ) -> tuple[list[dict[str, Any]], int]:
    """``[{"index", "score"[, "text"]}]`` best first (ties keep input order)."""
    model, _, _ = _ready(entry)
    if getattr(model, "num_labels", 1) != 1:
        raise ApiError(424, f"model {entry.model_id} is not a re-ranker model: it has {model.num_labels} labels",
                       "backend")
    scores, tokens = await pair_scores(entry, [(query, t) for t in texts], raw_scores=raw_scores,
                                       truncate=truncate, direction=direction)
    ranks: list[dict[str, Any]] = [{"index": i, "score": float(s.reshape(-1)[0]), **({"text": texts[i]} if return_text else {})}
             for i, s in enumerate(scores)]
    ranks.sort(key=lambda r: -r["score"])
    return ranks, tokens


def sparse_json(vector: SparseVector) -> list[dict[str, Any]]:
    """``[{"index", "value"}]`` of the active dimensions, by index."""
    return [{"index": i, "value": v} for i, v in zip(vector.indices.tolist(), vector.values.tolist())]


async def similarity_scores(entry: ModelEntry, source: str, sentences: list[str], *, prompt_name: str | None = None,
                            truncate: bool = True, direction: str = "right") -> tuple[list[float], int]:
    """One score per sentence against ``source``: the model's similarity (dense, sparse) or pair score (reranker)."""
    model, _, _ = _ready(entry)
    if entry.kind.name == "cross":
        scores, tokens = await pair_scores(entry, [(source, s) for s in sentences], truncate=truncate,
                                           direction=direction)
        return [float(s.reshape(-1)[0]) for s in scores], tokens
    if entry.kind.name == "multi-vector":  # MaxSim of the source as a query against the sentences as documents
        query, query_tokens = await token_vector_rows(entry, [source], prompt_name=prompt_name or "query",
                                                      truncate=truncate, direction=direction)
        documents, tokens = await token_vector_rows(entry, sentences, truncate=truncate, direction=direction)
        return model.similarity(query, documents)[0].tolist(), query_tokens + tokens
    if entry.kind.name == "sparse":
        rows, tokens = await sparse_rows(entry, [source, *sentences], prompt_name=prompt_name, truncate=truncate,
                                         direction=direction)
        return model.similarity(rows[:1], rows[1:])[0].tolist(), tokens
    emb, tokens = await embed_rows(entry, [source, *sentences], prompt_name=prompt_name, truncate=truncate,
                                   direction=direction)
    matrix = np.stack(emb)
    return model.similarity(matrix[:1], matrix[1:])[0].tolist(), tokens
