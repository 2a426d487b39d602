"""RFC 9110 section 15.5.6: every 405 names the methods the target resource takes in an ``Allow`` header.

Every route of a live server is asked with every method it does not take, TRACE and CONNECT included.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.routing import Match

from onnx_st.server import create_app

from .server_helpers import fixture_models, live_server

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


def _routes(routes: list[Any]) -> list[Any]:
    """The app's endpoint routes, included routers opened."""
    found = []
    for route in routes:
        if getattr(route, "methods", None) is not None and hasattr(route, "path"):
            found.append(route)
        else:
            inner = getattr(route, "router", None) or getattr(route, "original_router", None)
            found += _routes(inner.routes) if inner is not None else []
    return found


def test_every_405_carries_allow() -> None:
    models = fixture_models()
    routes = _routes(create_app(models).router.routes)
    assert len(routes) > 20
    model_id = next(iter(models))
    checked = 0
    with live_server(models) as url:
        for route in routes:
            path = route.path.replace("{model_id:path}", model_id)
            scope = {"type": "http", "path": path, "method": "GET"}
            # the route that answers this path (the first whose path matches, in routing order) and the methods
            # any route takes there (a model id may hold slashes: POST /models/a/info asks for the model "a/info")
            first = next(other for other in routes if other.matches(scope)[0] is not Match.NONE)
            allowed = set(first.methods)
            taken = {m for other in routes if other.matches(scope)[0] is not Match.NONE for m in other.methods}
            for method in METHODS:
                if method in taken:
                    continue
                response = httpx.request(method, url + path, timeout=30)
                assert response.status_code == 405, (method, path, response.status_code, response.text[:200])
                assert "allow" in response.headers, (method, path)
                assert {m.strip() for m in response.headers["allow"].split(",")} == allowed, (method, path)
                assert response.headers["content-type"].startswith("application/json"), (method, path)
                checked += 1
    assert checked > 150
