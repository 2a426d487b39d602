"""JSON errors in text-embeddings-inference's shape: ``{"error": ..., "error_type": ...}``."""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from onnx_st.errors import InputError, OnnxSTError

logger = logging.getLogger("onnx_st.server")

_TYPE_BY_STATUS = {400: "empty", 401: "unauthorized", 404: "not_found", 405: "validation", 413: "validation",
                   422: "validation", 424: "backend", 429: "overloaded", 503: "unhealthy"}


class ApiError(Exception):
    """An error answered as JSON with ``status`` (never a 500 for bad input).

    Args:
        status: HTTP status code.
        message: the ``error`` text.
        error_type: ``validation``, ``empty``, ``tokenizer``, ``backend``, ``overloaded``, ``unhealthy``...
        headers: response headers (``Retry-After``).
        extra: more fields of the body (``estimated_time`` for a loading model).
    """

    def __init__(self, status: int, message: str, error_type: str | None = None, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.headers = headers or {}
        self.status = status
        self.message = message
        self.error_type = error_type or _TYPE_BY_STATUS.get(status, "backend")
        self.extra = extra

    def body(self, openai: bool = False) -> dict[str, Any]:
        """TEI's ``{"error", "error_type"}``; OpenAI routes: ``{"error": {"message", "type", "param", "code"}}``.

        Absolute file paths in the message are cut to their last component.
        """
        message = without_paths(self.message)
        if openai:
            return {"error": {"message": message, "type": _OPENAI_TYPES.get(self.status, "server_error"),
                              "param": self.extra.get("param"), "code": self.error_type}}
        return {"error": message, "error_type": self.error_type, **{k: v for k, v in self.extra.items() if k != "param"}}


_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
                 405: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
                 424: "invalid_request_error", 429: "rate_limit_exceeded", 503: "server_error"}
_PATH = re.compile(r"(?<![\w.:-])(?:[A-Za-z]:)?[\\/](?:[^\s'\"\\/]+[\\/])+(?=[^\s'\"\\/]*)")


def without_paths(message: str) -> str:
    """``message`` with every absolute path reduced to its last component (``/srv/m/onnx/model.onnx`` -> ``model.onnx``)."""
    return _PATH.sub("", message)


def json_bytes(content: Any) -> bytes:
    """Compact JSON; non-finite floats become ``null`` (JSON has no NaN)."""
    try:
        return json.dumps(content, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        return json.dumps(_finite(content), separators=(",", ":"), allow_nan=False).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response from already-plain Python data."""
    return Response(json_bytes(content), status_code=status, headers=headers, media_type="application/json")


def error_response(exc: ApiError, request: Request | None = None) -> Response:
    """The JSON answer of an :class:`ApiError` (OpenAI's shape under ``/v1`` and ``/embeddings``).

    With ``request``, the failure is counted in ``te_request_failure`` by route template and error type.
    """
    path = request.url.path if request is not None else ""
    server = getattr(request.app.state, "server", None) if request is not None else None
    if server is not None and request is not None:
        route = getattr(request.scope.get("route"), "path_format", None) or "unmatched"
        server.metrics.inc("te_request_failure", {"route": str(route), "err": exc.error_type})
    openai = path.startswith(("/v1/", "/v2/")) or path == "/embeddings"
    headers = dict(exc.headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.status == 503 and "estimated_time" in exc.extra:
        headers["Retry-After"] = str(max(1, round(float(exc.extra["estimated_time"]))))
    return json_response(exc.body(openai), exc.status, headers)


def from_model_error(exc: Exception) -> ApiError:
    """Map an exception raised by a model call: bad input -> 422, other onnx-st errors -> 424."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InputError):
        return ApiError(422, str(exc), "validation")
    if isinstance(exc, OnnxSTError):
        return ApiError(424, str(exc), "backend")
    logger.exception("inference failed", exc_info=exc)
    return ApiError(500, f"Inference failed: {type(exc).__name__}", "backend")


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    """Every error of the app becomes JSON in the shape above."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        return error_response(exc if isinstance(exc, ApiError) else from_model_error(exc), request)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first: tuple[Any, ...] = tuple(exc.errors()[0].get("loc", ())) if exc.errors() else ()
        param = str(first[1]) if len(first) > 1 and first[0] == "body" else None  # the top-level field
        return error_response(ApiError(422, _validation_message(exc), "validation", param=param), request)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(ApiError(exc.status_code, str(exc.detail), headers=dict(exc.headers or {})), request)

    async def on_any(request: Request, exc: Exception) -> Response:
        return error_response(from_model_error(exc), request)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_any)
