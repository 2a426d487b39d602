"""AWS Lambda entry point: function URL and API Gateway (HTTP API v2, REST API v1) events.

The model directory named by ``ONNX_ST_MODEL_DIR`` is loaded once per container (model id:
``ONNX_ST_MODEL_ID``, default the directory name; ``ONNX_ST_TOKEN`` requires a bearer token).
Each event runs through the same app as ``onnx-st serve``, so every route and payload answers
the same way. An event that is not an HTTP event is taken as an Inference API payload for the
model (``{"inputs": ...}`` sent with a direct ``Invoke``).

Handler: ``onnx_st.server.lambda_handler.handler``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from fastapi import FastAPI

_runtime: dict[str, Any] = {}


def _app() -> tuple[FastAPI, asyncio.AbstractEventLoop, str]:
    """The app and event loop of this container, built on the first event."""
    if not _runtime:
        from ..options import RuntimeOptions
        from .app import create_app
        from .registry import load_model

        model_dir = os.environ.get("ONNX_ST_MODEL_DIR")
        if not model_dir:
            raise RuntimeError("set ONNX_ST_MODEL_DIR to the model directory to serve")
        model_id = os.environ.get("ONNX_ST_MODEL_ID") or Path(model_dir).name
        runtime = RuntimeOptions.from_env()  # ONNX_ST_FILE_NAME, ONNX_ST_PROVIDER, ONNX_ST_THREADS ...
        app = create_app({model_id: load_model(Path(model_dir), runtime)}, token=os.environ.get("ONNX_ST_TOKEN") or None,
                         max_wait_ms=0.0)
        _runtime.update(app=app, loop=asyncio.new_event_loop(), model_id=model_id)
    return _runtime["app"], _runtime["loop"], _runtime["model_id"]


def reset() -> None:
    """Forget the loaded app (a new ``ONNX_ST_MODEL_DIR`` takes effect on the next event)."""
    loop, app = _runtime.get("loop"), _runtime.get("app")
    _runtime.clear()
    if loop is not None and app is not None:
        loop.run_until_complete(app.state.server.registry.stop())
        loop.close()


def _http_parts(event: dict[str, Any], model_id: str) -> tuple[str, str, str, dict[str, str], bytes]:
    """``(method, path, query, headers, body)`` of a v2, v1 or direct event."""
    context = event.get("requestContext") or {}
    if "http" in context or event.get("version") == "2.0":
        http = context.get("http") or {}
        method, path = http.get("method", "GET"), event.get("rawPath") or http.get("path") or "/"
        stage = context.get("stage")
        if stage and stage != "$default" and path.startswith(f"/{stage}/"):
            path = path[len(stage) + 1:]
        query = event.get("rawQueryString") or ""
        headers = {k.lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        if event.get("cookies"):
            headers["cookie"] = "; ".join(event["cookies"])
    elif "httpMethod" in event:
        method, path = event["httpMethod"], event.get("path") or "/"
        multi = event.get("multiValueQueryStringParameters") or {}
        pairs = [(k, v) for k, vs in multi.items() for v in vs or ()] if multi else \
            list((event.get("queryStringParameters") or {}).items())
        query = urlencode(pairs)
        headers = {k.lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        for k, vs in (event.get("multiValueHeaders") or {}).items():
            headers[k.lower()] = ", ".join(str(v) for v in vs or ())
    else:  # direct invocation with the payload itself
        body = json.dumps({k: v for k, v in event.items() if k != "headers"}).encode()
        headers = {k.lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        headers["content-type"] = "application/json"
        return "POST", f"/models/{quote(model_id, safe='')}", "", headers, body
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    return method.upper(), path, query, headers, body


async def _call(app: FastAPI, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes) -> dict[str, Any]:
    headers = {k: v for k, v in headers.items() if k != "content-length"}
    headers["content-length"] = str(len(body))
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": method, "scheme": "https", "path": unquote(path), "raw_path": path.encode(),
             "query_string": query.encode(), "root_path": "", "client": ("127.0.0.1", 0), "server": ("lambda", 443),
             "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]}
    pending: list[MutableMapping[str, Any]] = [{"type": "http.request", "body": body, "more_body": False}]
    done = asyncio.Event()
    response: dict[str, Any] = {"status": 500, "headers": [], "body": []}

    async def receive() -> MutableMapping[str, Any]:
        if pending:
            return pending.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            response["status"], response["headers"] = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            response["body"].append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    data = b"".join(response["body"])
    out_headers: dict[str, str] = {}
    for k, v in response["headers"]:
        key = k.decode("latin-1")
        out_headers[key] = f"{out_headers[key]}, {v.decode('latin-1')}" if key in out_headers else v.decode("latin-1")
    try:
        text, encoded = data.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(data).decode(), True
    return {"statusCode": response["status"], "headers": out_headers, "body": text, "isBase64Encoded": encoded}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Answer one Lambda event with ``{"statusCode", "headers", "body", "isBase64Encoded"}``."""
    app, loop, model_id = _app()
    if not isinstance(event, dict):
        event = {"inputs": event}
    return loop.run_until_complete(_call(app, *_http_parts(event, model_id)))
