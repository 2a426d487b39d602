"""The app factory: routes, errors, payload limit, background loading and the public endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onnx_st import __version__
from onnx_st.base.model import BaseModel
from onnx_st.options import RuntimeOptions
from onnx_st.server.cache import ResultCache
from onnx_st.server.errors import ApiError, error_response, install_handlers, json_response
from onnx_st.server.metrics import Metrics
from onnx_st.server.registry import Loader, ModelRegistry
from onnx_st.server.routes_hf import router as hf_router
from onnx_st.server.routes_openai import router as openai_router
from onnx_st.server.routes_rerank import router as rerank_router
from onnx_st.server.routes_root import router as root_router
from onnx_st.server.routes_tei import ERRORS
from onnx_st.server.routes_tei import router as tei_router
from onnx_st.server.schemas import ErrorResponse
from onnx_st.server.service import ServerState, Settings, require_token, state


class PayloadTooLarge(HTTPException):
    """A body over the limit (an HTTPException so FastAPI's body reader passes it through)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Payload larger than {limit} bytes")


class PayloadLimit:
    """ASGI middleware: 413 for bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(ApiError(413, f"Payload larger than {self.max_bytes} bytes"))(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


def create_app(models: Mapping[str, BaseModel | str | Path], token: str | None = None, *,
               max_batch_tokens: int = 16384, max_client_batch_size: int = 32, max_payload_bytes: int = 2_000_000,
               max_wait_ms: float = 2.0, max_queue_tokens: int = 262144, cache_entries: int = 1024, auto_truncate: bool = False,
               loader: Loader | None = None,
               runtime: RuntimeOptions | Mapping[str, RuntimeOptions] | None = None) -> FastAPI:
    """A FastAPI app serving ``models`` by id.

    Args:
        models: id -> a loaded ``SentenceTransformer``/``SparseEncoder``/``CrossEncoder``, or a directory
            loaded in the background at startup (503 with ``estimated_time`` until ready).
        token: when set, every route but ``/health``, ``/metrics`` and the docs needs ``Authorization: Bearer``.
        max_batch_tokens: token budget of one merged batch.
        max_client_batch_size: inputs one request may carry.
        max_payload_bytes: request body limit (413 beyond).
        max_wait_ms: how long the batcher keeps collecting once requests queue up.
        max_queue_tokens: tokens admitted and unanswered per model beyond which new requests get 429 at once.
        cache_entries: size of the result cache (0 disables it).
        auto_truncate: TEI's ``--auto-truncate``: the default of ``truncate`` on TEI and OpenAI routes.
        loader: loads a directory (default: with the front class of its kind).
        runtime: :class:`~onnx_st.RuntimeOptions` of every directory, or per model id.

    Example:
        >>> app = create_app({"minilm": SentenceTransformer("all-minilm-l6-v2-onnx")})
        >>> uvicorn.run(app, host="127.0.0.1", port=8080)
    """
    metrics = Metrics()
    registry = ModelRegistry(models, loader=loader, metrics=metrics, runtime=runtime, max_batch_tokens=max_batch_tokens,
                             max_wait_ms=max_wait_ms, max_queue_tokens=max_queue_tokens)
    settings = Settings(token=token, max_client_batch_size=max_client_batch_size,
                        max_payload_bytes=max_payload_bytes, max_batch_tokens=max_batch_tokens,
                        max_queue_tokens=max_queue_tokens,
                        auto_truncate=auto_truncate)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry.start()
        yield
        await registry.stop()

    app = FastAPI(title="onnx-st", version=__version__, lifespan=lifespan,
                  description="Sentence-transformers models on ONNX Runtime: text-embeddings-inference, "
                              "Hugging Face Inference API and OpenAI compatible routes.")
    app.state.server = ServerState(registry, settings, ResultCache(cache_entries), metrics)
    install_handlers(app)
    app.add_middleware(PayloadLimit, max_bytes=max_payload_bytes)
    app.include_router(tei_router)
    app.include_router(root_router)  # its /models/{id}/<route> before the Inference API's /models/{id}
    app.include_router(hf_router)
    app.include_router(openai_router)
    app.include_router(rerank_router)
    _public_routes(app)
    return app


def _public_routes(app: FastAPI) -> None:
    @app.get("/health", tags=["Text Embeddings Inference"], summary="Readiness", response_class=Response,
             responses={200: {"description": "Every model is ready (empty body)"},
                        503: {"model": ErrorResponse, "description": "A model is loading or failed to load"}})
    async def health(request: Request) -> Response:
        """200 when every model is ready; 503 while one loads or after one failed."""
        entries = state(request).registry.entries.values()
        pending = {e.model_id: e.state for e in entries if e.state != "ready"}
        if pending:
            return error_response(ApiError(503, f"unhealthy: {pending}", "unhealthy"))
        return Response(status_code=200)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["Text Embeddings Inference"],
             summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        """Counters and histograms in the Prometheus text format."""
        return PlainTextResponse(state(request).metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/models", dependencies=[require_dep()], responses=ERRORS, tags=["Hugging Face Inference API"],
             summary="Served models")
    async def list_models(request: Request) -> Response:
        """Each served model: id, kind and state (``loading``, ``ready``, ``failed``)."""
        entries = state(request).registry.entries.values()
        return json_response([{"id": e.model_id, "kind": e.kind.name, "state": e.state,
                               **({"estimated_time": e.estimated_time()} if e.state == "loading" else {})}
                              for e in entries])


def require_dep() -> Any:
    """The auth dependency, for routes declared outside the routers."""
    from fastapi import Depends

    return Depends(require_token)
