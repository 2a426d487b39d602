"""AWS Lambda entry point: function URL and API Gateway (HTTP API v2, REST API v1) events.

The model directory named by ``ONNX_ST_MODEL_DIR`` is loaded once per container; the rest of
the environment is read by :func:`settings_from_env` (model id, ONNX file, threads, bearer token).
Each event runs through the same app as ``onnx-st serve``, so every route and payload answers
the same way. An event that is not an HTTP event is taken as an Inference API payload for the
model (``{"inputs": ...}`` sent with a direct ``Invoke``). ``onnx-st lambda-package`` builds a
function package for it.

Handler: ``onnx_st.serverless.handler.handler``.

Inside Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set) the model is loaded when this module is imported,
in the function's init phase, as AWS recommends for expensive set-up: provisioned concurrency then
keeps loaded containers, and SnapStart (Python 3.12+) snapshots the loaded model, so a restored
container skips the imports and the load. ``ONNX_ST_LOAD_ON_INIT=0`` defers it to the first event.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from fastapi import FastAPI

from onnx_st.errors import ConfigError, InputError
from onnx_st.options import RuntimeOptions

_runtime: dict[str, Any] = {}


@dataclass(frozen=True)
class LambdaSettings:
    """What a function container serves, from its environment variables."""

    model_dir: Path
    model_id: str
    token: str | None = None
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)


def settings_from_env(env: Mapping[str, str] | None = None) -> LambdaSettings:
    """Read ``ONNX_ST_MODEL_DIR`` (required), ``ONNX_ST_MODEL_ID`` (default: the directory name),
    ``ONNX_ST_TOKEN`` and the runtime options' ``ONNX_ST_*`` variables (``ONNX_ST_FILE_NAME``,
    ``ONNX_ST_THREADS``, ``ONNX_ST_PREPACK``... see :class:`onnx_st.RuntimeOptions`).

    Raises:
        ConfigError: ``ONNX_ST_MODEL_DIR`` is unset or a runtime variable does not parse (named).
    """
    env = os.environ if env is None else env
    model_dir = env.get("ONNX_ST_MODEL_DIR")
    if not model_dir:
        raise ConfigError("set ONNX_ST_MODEL_DIR to the model directory to serve")
    try:
        runtime = RuntimeOptions.from_env(env)
    except InputError as exc:
        raise ConfigError(f"function environment: {exc}") from exc
    return LambdaSettings(Path(model_dir), env.get("ONNX_ST_MODEL_ID") or Path(model_dir).name,
                          env.get("ONNX_ST_TOKEN") or None, runtime)


def _app() -> tuple[FastAPI, asyncio.AbstractEventLoop, str]:
    """The app and event loop of this container, built on the first event."""
    if not _runtime:
        from onnx_st.server.app import create_app
        from onnx_st.server.registry import load_served_model

        settings = settings_from_env()
        model = load_served_model(settings.model_dir, settings.runtime)
        app = create_app({settings.model_id: model}, token=settings.token, max_wait_ms=0.0)
        _runtime.update(app=app, loop=asyncio.new_event_loop(), model_id=settings.model_id)
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


def load_on_init(env: Mapping[str, str] | None = None) -> bool:
    """Whether importing this module loads the model: inside Lambda, with ``ONNX_ST_MODEL_DIR`` set,
    unless ``ONNX_ST_LOAD_ON_INIT=0``."""
    env = os.environ if env is None else env
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME") and env.get("ONNX_ST_MODEL_DIR")
                and env.get("ONNX_ST_LOAD_ON_INIT", "1") != "0")


if load_on_init():
    _app()
