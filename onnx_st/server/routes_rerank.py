"""Cohere-style (``/v1/rerank``, ``/v2/rerank``) and Jina-style rerank bodies, answered by a reranker."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from onnx_st.server.ops import rank
from onnx_st.server.registry import ModelEntry
from onnx_st.server.routes_openai import ERRORS
from onnx_st.server.schemas import RerankBody
from onnx_st.server.service import check_batch, require_token, serve, state

router = APIRouter(dependencies=[Depends(require_token)], responses=ERRORS, tags=["Cohere and Jina rerank"])


async def _rerank(body: RerankBody, request: Request) -> Response:
    st = state(request)
    texts = [d if isinstance(d, str) else d.text for d in body.documents]
    check_batch(st, len(texts), "documents")
    entry = st.registry.get(body.model, "cross")

    async def compute(e: ModelEntry) -> tuple[Any, int]:
        ranks, tokens = await rank(e, body.query, texts, truncate=True)
        results = [{"index": r["index"], "relevance_score": r["score"],
                    **({"document": {"text": texts[r["index"]]}} if body.return_documents else {})}
                   for r in ranks[:body.top_n]]
        return {"id": str(uuid.uuid4()), "model": e.model_id, "results": results,
                "usage": {"total_tokens": tokens}, "meta": {"billed_units": {"search_units": 1}}}, tokens

    return await serve(request, entry, "cohere_rerank", body.model_dump(), compute, use_cache=False)


@router.post("/v1/rerank", summary="Cohere v1 / Jina rerank")
async def rerank_v1(body: RerankBody, request: Request) -> Response:
    """``{"results": [{"index", "relevance_score"[, "document"]}]}``, best first."""
    return await _rerank(body, request)


@router.post("/v2/rerank", summary="Cohere v2 rerank")
async def rerank_v2(body: RerankBody, request: Request) -> Response:
    """Same as ``/v1/rerank``."""
    return await _rerank(body, request)
