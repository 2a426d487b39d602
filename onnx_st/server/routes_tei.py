"""text-embeddings-inference routes: /embed, /embed_all, /embed_sparse, /rerank, /similarity, /tokenize, /info."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from onnx_st import __version__
from onnx_st.kinds import Capability
from onnx_st.modules import Pooling
from onnx_st.server.errors import ApiError, json_bytes, json_response
from onnx_st.server.inference import check_prompt
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
from onnx_st.server.schemas import (
    DecodeRequest,
    EmbedAllRequest,
    EmbedRequest,
    EmbedSparseRequest,
    ErrorResponse,
    Info,
    Prediction,
    PredictRequest,
    Rank,
    RerankRequest,
    SimilarityParameters,
    SimilarityRequest,
    SimpleToken,
    SparseValue,
    TokenizeRequest,
)
from onnx_st.server.service import check_batch, header_flag, require_token, serve, state

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in (
        (400, "Empty batch"), (401, "Missing or wrong token"), (404, "Unknown model"), (413, "Payload too large"),
        (422, "Invalid request, too many inputs, or an input too long without truncate"),
        (424, "The model cannot answer this route"), (429, "Model is overloaded"),
        (503, "Model still loading (`estimated_time`) or failed to load"))}

router = APIRouter(dependencies=[Depends(require_token)], responses=ERRORS, tags=["Text Embeddings Inference"])


def _texts(inputs: str | list[str]) -> tuple[list[str], str]:
    return ([inputs], "single") if isinstance(inputs, str) else (list(inputs), "batch")


def _truncate(request: Request, value: bool | None) -> bool:
    return state(request).settings.auto_truncate if value is None else value


@router.post("/embed", response_model=list[list[float]], summary="Dense embeddings")
async def embed(req: EmbedRequest, request: Request) -> Response:
    """One embedding per input (L2-normalized unless ``normalize`` is false)."""
    texts, method = _texts(req.inputs)
    check_batch(state(request), len(texts))
    entry = state(request).registry.get(req.model, "dense")

    async def compute(e: ModelEntry) -> tuple[Any, int]:
        rows, tokens = await embed_rows(e, texts, prompt_name=req.prompt_name, normalize=req.normalize,
                                        dimensions=req.dimensions, truncate=_truncate(request, req.truncate),
                                        direction=req.truncation_direction)
        return [r.tolist() for r in rows], tokens

    return await serve(request, entry, "embed", req.model_dump(), compute, method=method)


@router.post("/embed_all", response_model=list[list[list[float]]], summary="Token embeddings")
async def embed_all(req: EmbedAllRequest, request: Request) -> Response:
    """One vector per token of each input (``encode(output_value="token_embeddings")``)."""
    texts, method = _texts(req.inputs)
    check_batch(state(request), len(texts))
    st = state(request)
    entry = st.registry.get(req.model) if req.model else next(
        (e for e in st.registry.entries.values() if Capability.EMBED_ALL in e.kind.server_operations),
        st.registry.get(None))
    if Capability.EMBED_ALL not in entry.kind.server_operations:
        raise ApiError(424, f"model {entry.model_id} is a {entry.kind} model: it has no token embeddings", "backend")

    async def compute(e: ModelEntry) -> tuple[Any, int]:
        rows, tokens = await token_rows(e, texts, prompt_name=req.prompt_name,
                                        truncate=_truncate(request, req.truncate), direction=req.truncation_direction)
        return [r.tolist() for r in rows], tokens

    return await serve(request, entry, "embed_all", req.model_dump(), compute, method=method)


def _pairs(inputs: Any) -> tuple[list[tuple[str, str]], bool]:
    """TEI's predict inputs: a pair ``[a, b]`` or a list of pairs; the flag says a single pair was sent."""
    if isinstance(inputs, tuple) or (isinstance(inputs, list) and len(inputs) == 2 and all(
            isinstance(t, str) for t in inputs)):
        return [(inputs[0], inputs[1])], True
    if isinstance(inputs, list) and all(isinstance(p, tuple) for p in inputs):
        return list(inputs), False
    raise ApiError(422, "This model scores text pairs: send `inputs` as [text, text] or [[text, text], ...]",
                   "validation")


@router.post("/predict", response_model=list[Prediction] | list[list[Prediction]], summary="Classify text pairs")
async def predict(req: PredictRequest, request: Request) -> Response:
    """Each label's score of each pair, best first (the model's activation unless ``raw_scores``)."""
    pairs, single = _pairs(req.inputs)
    check_batch(state(request), len(pairs))
    entry = state(request).registry.get(req.model, "cross")

    async def compute(e: ModelEntry) -> tuple[Any, int]:
        scores, tokens = await pair_scores(e, pairs, raw_scores=req.raw_scores,
                                           truncate=_truncate(request, req.truncate),
                                           direction=req.truncation_direction)
        assert e.model is not None
        labels = e.model.labels
        out = [[{"score": float(v), "label": labels[i]} for v, i in sorted(
            ((float(v), i) for i, v in enumerate(s.reshape(-1).tolist())), key=lambda p: -p[0])] for s in scores]
        return (out[0] if single else out), tokens

    return await serve(request, entry, "predict", req.model_dump(), compute, method="single" if single else "batch")


@router.post("/decode", response_model=list[str], summary="Decode token ids")
async def decode(req: DecodeRequest, request: Request) -> Response:
    """The text of each list of token ids."""
    st = state(request)
    batch: list[list[int]] = [req.ids] if req.ids and isinstance(req.ids[0], int) else req.ids  # type: ignore
    check_batch(st, len(batch), "ids")
    entry = await st.registry.wait_ready(st.registry.get(req.model), header_flag(request, "x-wait-for-model", False),
                                         st.settings.wait_timeout_s)
    assert entry.limit is not None
    tokenizer = entry.limit.raw_tokenizer
    if tokenizer is None:
        raise ApiError(422, "This model has no tokenizer to decode with", "tokenizer")
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    for ids in batch:
        bad = next((i for i in ids if not 0 <= i < size), None)
        if bad is not None:
            raise ApiError(422, f"Token id {bad} is outside the vocabulary (size {size})", "validation")
    return json_response(tokenizer.decode_batch(batch, skip_special_tokens=req.skip_special_tokens))


@router.post("/embed_sparse", response_model=list[list[SparseValue]], summary="Sparse embeddings")
async def embed_sparse(req: EmbedSparseRequest, request: Request) -> Response:
    """The active dimensions of each input's sparse embedding."""
    texts, method = _texts(req.inputs)
    check_batch(state(request), len(texts))
    entry = state(request).registry.get(req.model, "sparse")

    async def compute(e: ModelEntry) -> tuple[Any, int]:
        rows, tokens = await sparse_rows(e, texts, prompt_name=req.prompt_name,
                                         truncate=_truncate(request, req.truncate), direction=req.truncation_direction)
        return [sparse_json(v) for v in rows], tokens

    return await serve(request, entry, "embed_sparse", req.model_dump(), compute, method=method)


@router.post("/rerank", response_model=list[Rank], response_model_exclude_none=True, summary="Rerank texts")
async def rerank(req: RerankRequest, request: Request) -> Response:
    """Scores of ``query`` with each text, best first."""
    check_batch(state(request), len(req.texts), "texts")
    entry = state(request).registry.get(req.model, "cross")

    async def compute(e: ModelEntry) -> tuple[Any, int]:
        return await rank(e, req.query, req.texts, raw_scores=req.raw_scores, return_text=req.return_text,
                          truncate=_truncate(request, req.truncate), direction=req.truncation_direction)

    return await serve(request, entry, "rerank", req.model_dump(), compute)


@router.post("/similarity", response_model=list[float], summary="Sentence similarity")
async def similarity(req: SimilarityRequest, request: Request) -> Response:
    """The model's similarity (cosine by default) of ``source_sentence`` with each sentence."""
    check_batch(state(request), len(req.inputs.sentences), "inputs.sentences")
    check_batch(state(request), len(req.inputs.sentences) + 1)
    entry = state(request).registry.get(req.model)
    if Capability.SIMILARITY not in entry.kind.server_operations:
        raise ApiError(424, f"model {entry.model_id} is a {entry.kind} model: no sentence similarity", "backend")
    params = req.parameters or SimilarityParameters()

    async def compute(e: ModelEntry) -> tuple[Any, int]:
        return await similarity_scores(e, req.inputs.source, req.inputs.sentences, prompt_name=params.prompt_name,
                                       truncate=_truncate(request, params.truncate),
                                       direction=params.truncation_direction)

    payload = {"source": req.inputs.source, "sentences": req.inputs.sentences, "parameters": params.model_dump()}
    return await serve(request, entry, "similarity", payload, compute)


@router.post("/tokenize", response_model=list[list[SimpleToken]], summary="Tokenize")
async def tokenize(req: TokenizeRequest, request: Request) -> Response:
    """The tokens of each input (after the prompt, when ``prompt_name`` is given)."""
    st = state(request)
    texts, _ = _texts(req.inputs)
    check_batch(st, len(texts))
    entry = await st.registry.wait_ready(st.registry.get(req.model), header_flag(request, "x-wait-for-model", False),
                                         st.settings.wait_timeout_s)
    assert entry.model is not None and entry.limit is not None
    prompt = ""
    check_prompt(entry.model, req.prompt_name)
    prompt = entry.model.prompts[req.prompt_name] if req.prompt_name is not None else ""
    limit = entry.limit
    texts = [prompt + t for t in texts]
    special = limit.add_special_tokens and req.add_special_tokens

    def listed() -> bytes:
        total = sum(limit.count(texts))
        if total > MAX_LISTED_TOKENS:
            raise ApiError(422, f"Input validation error: /tokenize lists at most {MAX_LISTED_TOKENS} tokens. "
                                f"Given: {total}", "validation")
        out = []
        for text, enc in zip(texts, limit.encode(texts, add_special_tokens=special)):
            out.append([{"id": i, "text": tok, "special": True, "start": None, "stop": None} if mask else
                        {"id": i, "text": text[a:b], "special": False, "start": a, "stop": b}
                        for i, tok, mask, (a, b) in zip(enc.ids, enc.tokens, enc.special_tokens_mask, enc.offsets)])
        return json_bytes(out)

    return Response(await asyncio.to_thread(listed), media_type="application/json")


MAX_LISTED_TOKENS = 65536
"""Tokens ``/tokenize`` lists in one answer."""


def _model_type(entry: ModelEntry) -> dict[str, Any]:
    model = entry.model
    if entry.kind.scores_pairs and model is not None:
        labels = dict(enumerate(model.labels))
        section = {"id2label": {str(k): v for k, v in labels.items()}, "label2id": {v: k for k, v in labels.items()}}
        return {"reranker" if len(labels) == 1 else "classifier": section}
    if entry.kind.output is Capability.EMBED_SPARSE:
        return {"embedding": {"pooling": "splade"}}
    modes = [m for module in (model.modules if model else [])
             if isinstance(module, Pooling) for m in module.modes]
    return {"embedding": {"pooling": "+".join(modes) or "none"}}


@router.get("/info", response_model=Info, summary="Model and server information")
async def info(request: Request, model: str | None = Query(None, description="Id of a served model")) -> Response:
    """text-embeddings-inference's ``/info`` for one served model (default: the first)."""
    st = state(request)
    entry = st.registry.get(model)
    data = Info(model_id=entry.model_id, served_model_name=entry.model_id, model_type=_model_type(entry),
                model_state=entry.state, max_concurrent_requests=st.settings.max_queue_tokens // max(1, st.settings.max_batch_tokens),
                max_input_length=entry.model.max_seq_length if entry.model else None,
                max_batch_tokens=st.settings.max_batch_tokens, max_client_batch_size=st.settings.max_client_batch_size,
                auto_truncate=st.settings.auto_truncate, version=__version__, models=list(st.registry.entries))
    return json_response(data.model_dump())
