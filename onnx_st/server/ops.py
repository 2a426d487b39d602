"""Inference steps the routes share: validate, count tokens (off the event loop), queue, shape results."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from onnx_st.kinds import Capability
from onnx_st.server.batcher import MicroBatcher
from onnx_st.server.errors import ApiError
from onnx_st.server.inference import (
    Embed,
    EmbedSparse,
    EmbedTokens,
    Item,
    Operation,
    Predict,
    TokenLimit,
    check_prompt,
    prompt_text,
    side,
)
from onnx_st.server.registry import ModelEntry
from onnx_st.sparse_embeddings import SparseVector

_INLINE_CHARS = 2048


def _ready(entry: ModelEntry) -> tuple[Any, TokenLimit, MicroBatcher]:
    assert entry.model is not None and entry.limit is not None and entry.batcher is not None
    return entry.model, entry.limit, entry.batcher


async def run_op(entry: ModelEntry, op: Operation, items: list[Any], counted: list[Item],
                 truncate: bool) -> tuple[list[Any], int]:
    """Count ``counted`` (the items as the model sees them) in a thread, then queue ``op`` on ``items``.

    A full queue answers 429 before any tokenizing; the event loop never tokenizes.
    """
    _, limit, batcher = _ready(entry)
    if batcher.full():
        raise batcher.overloaded()
    chars = sum(len(i) if isinstance(i, str) else len(i[0]) + len(i[1]) for i in counted)
    if chars <= _INLINE_CHARS:  # a few sentences: counted at once, never queued behind large bodies
        counts = limit.check(counted, truncate)
    else:
        counts = await asyncio.to_thread(limit.check, counted, truncate)
    return await batcher.submit(op, items, counts), sum(counts)


async def embed_rows(entry: ModelEntry, texts: list[str], *, prompt_name: str | None = None, normalize: bool = False,
                     dimensions: int | None = None, truncate: bool = True,
                     direction: str = "right") -> tuple[list[np.ndarray], int]:
    """Dense embeddings of ``texts`` (merged with other requests) and the tokens they took."""
    model, _, _ = _ready(entry)
    check_prompt(model, prompt_name)
    dim = model.get_embedding_dimension()
    if dimensions is not None and dim is not None and dimensions > dim:
        raise ApiError(422, f"dimensions must be at most {dim}, got {dimensions}", "validation", param="dimensions")
    prompt = prompt_text(model, prompt_name)
    op = Embed(prompt_name, bool(normalize), dimensions, side(direction))
    return await run_op(entry, op, texts, [prompt + t for t in texts], truncate)


async def token_rows(entry: ModelEntry, texts: list[str], *, prompt_name: str | None = None, truncate: bool = True,
                     direction: str = "right") -> tuple[list[np.ndarray], int]:
    """One vector per token of each text (TEI's ``/embed_all``)."""
    model, _, _ = _ready(entry)
    check_prompt(model, prompt_name)
    prompt = prompt_text(model, prompt_name)
    return await run_op(entry, EmbedTokens(prompt_name, side(direction)), texts, [prompt + t for t in texts], truncate)


async def sparse_rows(entry: ModelEntry, texts: list[str], *, prompt_name: str | None = None, truncate: bool = True,
                      direction: str = "right") -> tuple[list[SparseVector], int]:
    """Sparse embeddings of ``texts`` and the tokens they took."""
    model, _, _ = _ready(entry)
    check_prompt(model, prompt_name)
    prompt = prompt_text(model, prompt_name)
    return await run_op(entry, EmbedSparse(prompt_name, side(direction)), texts, [prompt + t for t in texts], truncate)


async def pair_scores(entry: ModelEntry, pairs: list[tuple[str, str]], *, raw_scores: bool = False,
                      truncate: bool = True, direction: str = "right") -> tuple[list[np.ndarray], int]:
    """Cross-encoder scores of ``pairs`` (the model's activation unless ``raw_scores``)."""
    return await run_op(entry, Predict(bool(raw_scores), side(direction)), pairs, list(pairs), truncate)


async def rank(entry: ModelEntry, query: str, texts: list[str], *, raw_scores: bool = False,
               return_text: bool = False, truncate: bool = True, direction: str = "right"
               ) -> tuple[list[dict[str, Any]], int]:
    """``[{"index", "score"[, "text"]}]`` best first (ties keep input order)."""
    model, _, _ = _ready(entry)
    if len(model.labels) != 1:
        raise ApiError(424, f"model {entry.model_id} is not a re-ranker model: it has {len(model.labels)} labels",
                       "backend")
    scores, tokens = await pair_scores(entry, [(query, t) for t in texts], raw_scores=raw_scores,
                                       truncate=truncate, direction=direction)
    ranks: list[dict[str, Any]] = [
        {"index": i, "score": float(s.reshape(-1)[0]), **({"text": texts[i]} if return_text else {})}
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
    if entry.kind.output is Capability.PREDICT:
        scores, tokens = await pair_scores(entry, [(source, s) for s in sentences], truncate=truncate,
                                           direction=direction)
        return [float(s.reshape(-1)[0]) for s in scores], tokens
    if entry.kind.output is Capability.EMBED_ALL:  # MaxSim of the source as a query against the sentences
        query, query_tokens = await token_rows(entry, [source], prompt_name=prompt_name or "query",
                                               truncate=truncate, direction=direction)
        documents, tokens = await token_rows(entry, sentences, truncate=truncate, direction=direction)
        return model.similarity(query, documents)[0].tolist(), query_tokens + tokens
    if entry.kind.output is Capability.EMBED_SPARSE:
        rows, tokens = await sparse_rows(entry, [source, *sentences], prompt_name=prompt_name, truncate=truncate,
                                         direction=direction)
        return model.similarity(rows[:1], rows[1:])[0].tolist(), tokens
    emb, tokens = await embed_rows(entry, [source, *sentences], prompt_name=prompt_name, truncate=truncate,
                                   direction=direction)
    matrix = np.stack(emb)
    return model.similarity(matrix[:1], matrix[1:])[0].tolist(), tokens
