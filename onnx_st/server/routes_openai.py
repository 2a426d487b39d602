"""OpenAI-style ``POST /v1/embeddings``."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from onnx_st.server.ops import embed_rows
from onnx_st.server.registry import ModelEntry
from onnx_st.server.schemas import OpenAIErrorResponse, OpenAIRequest, OpenAIResponse
from onnx_st.server.service import check_batch, require_token, serve, state

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": OpenAIErrorResponse} for code in
                                           (400, 401, 404, 413, 422, 424, 429, 503)}

MAX_INPUTS = 2048
"""Inputs one ``/v1/embeddings`` request may carry, as OpenAI's API takes (run in internal batches)."""

router = APIRouter(dependencies=[Depends(require_token)], responses=ERRORS, tags=["OpenAI"])


def _encode(row: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode()
    return row.tolist()  # type: ignore[no-any-return]


async def _embeddings(req: OpenAIRequest, request: Request) -> Response:
    st = state(request)
    texts = [req.input] if isinstance(req.input, str) else list(req.input)
    check_batch(st, len(texts), limit=MAX_INPUTS)
    entry = st.registry.get(req.model, "dense")

    async def compute(e: ModelEntry) -> tuple[Any, int]:
        rows, tokens = await embed_rows(e, texts, normalize=True, dimensions=req.dimensions, truncate=req.truncate)
        data = [{"object": "embedding", "embedding": _encode(r, req.encoding_format), "index": i}
                for i, r in enumerate(rows)]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"object": "list", "data": data, "model": e.model_id, "usage": usage}, tokens

    return await serve(request, entry, "openai", req.model_dump(exclude={"user"}), compute,
                       method="single" if isinstance(req.input, str) else "batch")


@router.post("/v1/embeddings", response_model=OpenAIResponse, summary="OpenAI-compatible embeddings")
async def embeddings(req: OpenAIRequest, request: Request) -> Response:
    """L2-normalized embeddings; ``encoding_format`` base64 gives little-endian float32 bytes."""
    return await _embeddings(req, request)


@router.post("/embeddings", response_model=OpenAIResponse, include_in_schema=False)
async def embeddings_alias(req: OpenAIRequest, request: Request) -> Response:
    """Same as ``/v1/embeddings``."""
    return await _embeddings(req, request)
