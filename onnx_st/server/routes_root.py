"""``POST /`` and ``POST /invocations``: the route a client of one endpoint calls, answered by the model's kind.

As text-embeddings-inference does, a dense model embeds (``/embed``), a sparse one answers
``/embed_sparse``, a reranker ranks (``/rerank``) and a classifier predicts (``/predict``); a
sentence-similarity body (``{"inputs": {"source_sentence", "sentences"}}``, as the Inference API's
client sends it to an endpoint URL) is answered by ``/similarity`` for any kind, and text pairs by
``/predict``. The body's ``model`` names the model; without it the first served model answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from onnx_st.kinds import Capability
from onnx_st.server.errors import ApiError
from onnx_st.server.routes_tei import (
    ERRORS,
    decode,
    embed,
    embed_all,
    embed_sparse,
    info,
    predict,
    rerank,
    similarity,
    tokenize,
)
from onnx_st.server.schemas import (
    DecodeRequest,
    EmbedAllRequest,
    EmbedRequest,
    EmbedSparseRequest,
    PredictRequest,
    RerankRequest,
    SimilarityRequest,
    TokenizeRequest,
)
from onnx_st.server.service import require_token, state

router = APIRouter(dependencies=[Depends(require_token)], responses=ERRORS, tags=["Text Embeddings Inference"])


def _parse(schema: type[BaseModel], body: Any) -> Any:
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else "body"
        message = errors[0]["msg"] if errors else "invalid"
        raise ApiError(422, f"{where or 'body'}: {message}", "validation") from None


async def dispatch(request: Request, body: Any, model: str | None = None) -> Response:
    """Answer ``body`` with the route the shape of the body and the model's kind call for."""
    if not isinstance(body, dict):
        raise ApiError(422, "body: the request body must be a JSON object", "validation")
    model = model or body.get("model")
    entry = state(request).registry.get(model if isinstance(model, str) else None)
    inputs = body.get("inputs")
    if isinstance(inputs, dict) and "sentences" in inputs:
        if Capability.SIMILARITY not in entry.kind.server_operations:
            raise ApiError(424, f"model {entry.model_id} is a {entry.kind} model: no sentence similarity", "backend")
        return await similarity(_parse(SimilarityRequest, {**body, "model": entry.model_id}), request)
    output = entry.kind.output
    if output is Capability.PREDICT:
        num_labels = 1 if entry.model is None else len(entry.model.labels)
        if "query" in body or (num_labels == 1 and "inputs" not in body):
            return await rerank(_parse(RerankRequest, {**body, "model": entry.model_id}), request)
        return await predict(_parse(PredictRequest, {**body, "model": entry.model_id}), request)
    if output is Capability.EMBED_SPARSE:
        return await embed_sparse(_parse(EmbedSparseRequest, {**body, "model": entry.model_id}), request)
    if output is Capability.EMBED:
        return await embed(_parse(EmbedRequest, {**body, "model": entry.model_id}), request)
    return await embed_all(_parse(EmbedAllRequest, {**body, "model": entry.model_id}), request)


@router.post("/", summary="The model's own route (by its kind)")
async def root(request: Request, body: Any = Body(None)) -> Response:  # noqa: B008 - FastAPI's body marker
    """``/embed``, ``/embed_sparse``, ``/rerank``, ``/predict`` or ``/similarity``, by the model and the body."""
    return await dispatch(request, body)


@router.post("/invocations", summary="SageMaker's route: same as POST /")
async def invocations(request: Request, body: Any = Body(None)) -> Response:  # noqa: B008
    """Same as ``POST /``."""
    return await dispatch(request, body)


# One text-embeddings-inference endpoint per model: a TEI client given ``http://HOST/models/ID`` as its
# base URL finds that model's /info, /rerank, /embed ... (declared before the Inference API route).
Handler = Callable[[Any, Request], Awaitable[Response]]
_TEI: dict[str, tuple[type[BaseModel], Handler]] = {
        "embed": (EmbedRequest, embed), "embed_sparse": (EmbedSparseRequest, embed_sparse),
        "embed_all": (EmbedAllRequest, embed_all), "rerank": (RerankRequest, rerank),
        "predict": (PredictRequest, predict), "similarity": (SimilarityRequest, similarity),
        "tokenize": (TokenizeRequest, tokenize), "decode": (DecodeRequest, decode)}


@router.get("/models/{model_id:path}/info", summary="/info of one model (its own TEI endpoint)")
async def model_info(model_id: str, request: Request) -> Response:
    """text-embeddings-inference's ``/info`` of ``model_id``."""
    return await info(request, model_id)


def _per_model(route: str) -> None:
    schema, handler = _TEI[route]

    async def endpoint(model_id: str, request: Request, body: Any = Body(None)) -> Response:  # noqa: B008
        if not isinstance(body, dict):
            raise ApiError(422, "body: the request body must be a JSON object", "validation")
        state(request).registry.get(model_id)  # 404 for an unknown model
        return await handler(_parse(schema, {**body, "model": model_id}), request)

    endpoint.__doc__ = f"``/{route}`` of ``model_id``."
    router.add_api_route(f"/models/{{model_id:path}}/{route}", endpoint, methods=["POST"],
                         summary=f"/{route} of one model", name=f"model_{route}")


for _route in _TEI:
    _per_model(_route)
