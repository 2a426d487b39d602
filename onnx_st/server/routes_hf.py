"""Hugging Face Inference API: ``POST /models/{model_id}``, answered by the model's kind and the payload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from onnx_st.kinds import Capability
from onnx_st.server.errors import ApiError
from onnx_st.server.ops import (
    embed_rows,
    pair_scores,
    rank,
    similarity_scores,
    sparse_json,
    sparse_rows,
    token_rows,
)
from onnx_st.server.registry import ModelEntry
from onnx_st.server.routes_tei import ERRORS
from onnx_st.server.schemas import HFRequest, HFResponse, RankInput, SimilarityInput
from onnx_st.server.service import check_batch, require_token, serve, state

router = APIRouter(dependencies=[Depends(require_token)], responses=ERRORS, tags=["Hugging Face Inference API"])


@router.post("/models/{model_id:path}", response_model=HFResponse, summary="Inference API task of a model")
async def hf_inference(model_id: str, req: HFRequest, request: Request) -> Response:
    """Sentence similarity, feature extraction (dense or sparse), reranking or pair scores.

    Headers: ``x-use-cache`` (default true), ``x-wait-for-model`` (default false: 503 with
    ``estimated_time`` while the model loads). Inputs are truncated unless ``parameters.truncate`` is false.
    """
    st = state(request)
    if model_id not in st.registry.entries and "/pipeline/" in model_id:  # the Inference API's task URLs
        model_id = model_id.rsplit("/pipeline/", 1)[0]
    entry = st.registry.get(model_id)
    params = req.merged_parameters()
    truncate = True if params.truncate is None else params.truncate
    direction = params.truncation_direction
    inputs = req.inputs
    if isinstance(inputs, SimilarityInput):
        check_batch(st, len(inputs.sentences), "inputs.sentences")
        check_batch(st, len(inputs.sentences) + 1)
    elif isinstance(inputs, RankInput):
        check_batch(st, len(inputs.texts), "inputs.texts")
    elif isinstance(inputs, list):
        check_batch(st, len(inputs))

    async def compute(e: ModelEntry) -> tuple[Any, int]:
        if isinstance(inputs, SimilarityInput):
            return await similarity_scores(e, inputs.source, inputs.sentences, prompt_name=params.prompt_name,
                                           truncate=truncate, direction=direction)
        if isinstance(inputs, RankInput):
            if not e.kind.scores_pairs:
                raise ApiError(422, f"{{query, texts}} inputs need a reranker; {e.model_id} is a {e.kind} model")
            return await rank(e, inputs.query, inputs.texts, raw_scores=params.raw_scores,
                              return_text=params.return_text, truncate=truncate, direction=direction)
        if isinstance(inputs, list) and inputs and isinstance(inputs[0], tuple):
            if not e.kind.scores_pairs:
                raise ApiError(422, f"text pairs need a reranker; {e.model_id} is a {e.kind} model")
            scores, tokens = await pair_scores(e, list(inputs), raw_scores=params.raw_scores,  # type: ignore
                                               truncate=truncate, direction=direction)
            return [s.item() if s.size == 1 else s.tolist() for s in scores], tokens
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
        if e.kind.scores_pairs:
            raise ApiError(422, f"{e.model_id} is a reranker: send {{source_sentence, sentences}}, "
                                "{query, texts} or [[text, text], ...]")
        if e.kind.output is Capability.EMBED_SPARSE:
            rows, tokens = await sparse_rows(e, texts, prompt_name=params.prompt_name, truncate=truncate,
                                             direction=direction)
            out: list[Any] = [sparse_json(v) for v in rows]
        elif e.kind.output is Capability.EMBED_ALL:  # feature extraction: a list of token vectors per input
            vectors, tokens = await token_rows(e, texts, prompt_name=params.prompt_name, truncate=truncate,
                                                      direction=direction)
            out = [v.tolist() for v in vectors]
        else:
            emb, tokens = await embed_rows(e, texts, prompt_name=params.prompt_name,
                                           normalize=bool(params.normalize), dimensions=params.dimensions,
                                           truncate=truncate, direction=direction)
            out = [r.tolist() for r in emb]
        return (out[0] if isinstance(inputs, str) else out), tokens

    options = req.options
    payload = {"inputs": req.model_dump()["inputs"], "parameters": params.model_dump()}
    return await serve(request, entry, "models", payload, compute,
                       method="single" if isinstance(inputs, str) else "batch",
                       use_cache=options.use_cache if options else None,
                       wait=options.wait_for_model if options else None)
