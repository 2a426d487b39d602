"""What every route shares: settings, auth, headers, readiness, the result cache and metrics."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from onnx_st.server.cache import ResultCache, cache_key
from onnx_st.server.errors import ApiError, json_bytes
from onnx_st.server.metrics import Metrics
from onnx_st.server.registry import ModelEntry, ModelRegistry

T = TypeVar("T")
Compute = Callable[[ModelEntry], Awaitable[tuple[Any, int]]]


@dataclass
class Settings:
    """Server limits and options (``--max-client-batch-size`` ... of ``onnx-st serve``)."""

    token: str | None = None
    max_client_batch_size: int = 32
    max_payload_bytes: int = 2_000_000
    max_batch_tokens: int = 16384
    max_queue_tokens: int = 262144
    auto_truncate: bool = False
    wait_timeout_s: float = 600.0


@dataclass
class ServerState:
    """The app's shared objects (``app.state.server``)."""

    registry: ModelRegistry
    settings: Settings
    cache: ResultCache
    metrics: Metrics = field(default_factory=Metrics)


def state(request: Request) -> ServerState:
    """The :class:`ServerState` of the app serving ``request``."""
    return request.app.state.server  # type: ignore[no-any-return]


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>` when the server has a token")


async def require_token(request: Request,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """401 unless the server has no token or the request carries ``Authorization: Bearer <token>``."""
    token = state(request).settings.token
    if token is None:
        return
    given = request.headers.get("authorization", "")
    scheme, _, credential = given.strip().partition(" ")
    if scheme.lower() in ("bearer", "bearer:") and hmac.compare_digest(credential.strip().encode(), token.encode()):
        return  # the scheme matches in any case; the Inference API documents both spellings
    raise ApiError(401, "Invalid or missing token: send `Authorization: Bearer <token>`", "unauthorized")


def header_flag(request: Request, name: str, default: bool) -> bool:
    """A boolean header (``true``/``false``/``1``/``0``); absent or unreadable gives ``default``."""
    value = request.headers.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    return default


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it (and so dropping its queued jobs) if the client disconnects first."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise ApiError(499, "Client closed the request", "cancelled")
    return task.result()


def route_label(request: Request) -> str:
    """The matched route's path template (``/models/{model_id}``), so metric labels stay few."""
    route = request.scope.get("route")
    return str(getattr(route, "path_format", None) or "unmatched")


def check_batch(st: ServerState, n: int, what: str = "inputs", limit: int | None = None) -> None:
    """400 for no inputs, 422 beyond ``limit`` (default ``max_client_batch_size``)."""
    if n == 0:
        raise ApiError(400, f"`{what}` cannot be empty", "empty")
    limit = st.settings.max_client_batch_size if limit is None else limit
    if n > limit:
        raise ApiError(422, f"batch size {n} > maximum allowed batch size {limit}", "validation")


async def serve(request: Request, entry: ModelEntry, route: str, payload: Any, compute: Compute, *,
                method: str = "batch", use_cache: bool | None = None, wait: bool | None = None) -> Response:
    """Answer one inference request: readiness, cache lookup, ``compute`` and metrics.

    Args:
        payload: the parsed request (JSON-able); with ``entry`` and ``route`` it keys the cache.
        compute: returns ``(JSON-able result, tokens computed)``.
        use_cache, wait: body options overriding the ``x-use-cache``/``x-wait-for-model`` headers.
    """
    st = state(request)
    start = time.perf_counter()
    label = route_label(request)
    labels = {"route": label, "method": method}
    st.metrics.inc("te_request_count", labels)
    use_cache = header_flag(request, "x-use-cache", True) if use_cache is None else use_cache
    wait = header_flag(request, "x-wait-for-model", False) if wait is None else wait
    entry = await st.registry.wait_ready(entry, wait, st.settings.wait_timeout_s)
    key = cache_key(entry.model_id, route, payload) if use_cache else None
    body = st.cache.get(key) if key is not None else None
    headers = {"x-model-id": entry.model_id, "x-cache": "miss" if body is None else "hit"}
    if body is None:
        result, tokens = await until_disconnect(request, compute(entry))
        body = await asyncio.to_thread(json_bytes, result)
        if key is not None:
            st.cache.put(key, body)
        headers["x-compute-tokens"] = str(tokens)
    else:
        st.metrics.inc("te_cache_hit", {"route": label})
    elapsed = time.perf_counter() - start
    st.metrics.inc("te_request_success", labels)
    st.metrics.observe("te_request_duration", elapsed, {"route": label})
    headers.update({"x-compute-type": "cpu", "x-compute-time": str(round(elapsed * 1000)),
                    "x-total-time": str(round(elapsed * 1000))})
    return Response(body, headers=headers, media_type="application/json")
