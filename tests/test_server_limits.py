"""Headers, auth, limits and JSON errors of the real server; it stays up after every bad request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from onnx_st import SentenceTransformer
from onnx_st._runtime.tokenizer import truncating_from
from onnx_st.server import load_served_model
from onnx_st.server.inference import TokenLimit

from .conftest import fixture_dir
from .server_helpers import SEED_SENTENCES, SEED_SOURCE, client, fixture_models, live_server

LONG = " ".join(["alpha beta gamma delta"] * 60)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with live_server(max_payload_bytes=4000) as url, client(url) as c:
        yield c


def test_token_required_when_set() -> None:
    with live_server({"dense": SentenceTransformer(str(fixture_dir("dense-mean")))}, token="s3cret") as url, \
            client(url) as c:
        body = {"inputs": {"source_sentence": SEED_SOURCE, "sentences": SEED_SENTENCES}}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            r = c.post("/models/dense", json=body, headers=headers)
            assert r.status_code == 401 and r.json()["error_type"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"
        for value in ("Bearer s3cret", "Bearer: s3cret", "bearer s3cret", "BEARER  s3cret"):
            assert c.post("/models/dense", json=body, headers={"Authorization": value}).status_code == 200
        assert c.post("/embed", json={"inputs": "a"}).status_code == 401
        error = c.post("/v1/embeddings", json={"input": "a"}).json()["error"]  # OpenAI's shape
        assert error["code"] == "unauthorized" and error["type"] == "authentication_error" and error["message"]
        for public in ("/health", "/metrics", "/openapi.json"):
            assert c.get(public).status_code == 200, public


def test_result_cache_and_x_use_cache(http: httpx.Client) -> None:
    body = {"inputs": ["cache me", "and me"]}
    first = http.post("/models/dense", json=body)
    again = http.post("/models/dense", json=body)
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert again.content == first.content
    bypass = http.post("/models/dense", json=body, headers={"x-use-cache": "false"})
    assert bypass.headers["x-cache"] == "miss" and bypass.json() == first.json()
    assert http.post("/models/dense", json={**body, "options": {"use_cache": False}}).headers["x-cache"] == "miss"
    assert http.post("/models/dense", json={"inputs": ["cache me"]}).headers["x-cache"] == "miss"
    assert http.post("/embed", json=body).headers["x-cache"] == "miss"  # the route is part of the key
    assert 'te_cache_hit{route="/models/{model_id}"}' in http.get("/metrics").text


def test_x_wait_for_model_while_loading() -> None:
    release = threading.Event()

    def slow_loader(path: Path) -> Any:
        assert release.wait(30)
        return load_served_model(path)

    with live_server({"slow": fixture_dir("dense-mean")}, loader=slow_loader) as url, client(url) as c:
        body = {"inputs": {"source_sentence": SEED_SOURCE, "sentences": SEED_SENTENCES}}
        r = c.post("/models/slow", json=body)
        assert r.status_code == 503
        assert r.json()["error"] == "Model slow is currently loading" and r.json()["estimated_time"] > 0
        assert int(r.headers["retry-after"]) >= 1
        assert c.post("/embed", json={"inputs": "a"}).status_code == 503
        assert c.get("/health").status_code == 503
        assert c.get("/models").json()[0]["state"] == "loading"
        assert c.post("/models/slow", json=body, headers={"x-wait-for-model": "false"}).status_code == 503
        result: dict[str, httpx.Response] = {}
        waiter = threading.Thread(target=lambda: result.setdefault(
            "r", c.post("/models/slow", json=body, headers={"x-wait-for-model": "true"})))
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive()  # still waiting for the model
        release.set()
        waiter.join(30)
        assert result["r"].status_code == 200 and len(result["r"].json()) == 3
        assert c.get("/health").status_code == 200
        assert c.post("/models/slow", json={**body, "options": {"wait_for_model": True}}).status_code == 200


def test_failed_load_is_503_and_unhealthy(tmp_path: Path) -> None:
    def broken(path: Path) -> Any:
        raise OSError("disk gone")

    with live_server({"bad": fixture_dir("dense-mean")}, loader=broken) as url, client(url) as c:
        deadline = time.monotonic() + 10
        while c.get("/models").json()[0]["state"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        r = c.post("/models/bad", json={"inputs": "a"}, headers={"x-wait-for-model": "true"})
        assert r.status_code == 503 and "failed to load" in r.json()["error"]
        assert c.get("/health").status_code == 503


def test_payload_too_large(http: httpx.Client) -> None:
    big = {"inputs": ["x" * 1000] * 5}
    r = http.post("/embed", json=big)
    assert r.status_code == 413 and r.json()["error_type"] == "validation"

    def chunks() -> Iterator[bytes]:  # no content-length: the body is counted as it streams
        yield b'{"inputs": ["'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"]}'

    r = http.post("/embed", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error_type"] == "validation"


@pytest.mark.parametrize("body", [
    {"inputs": 3}, {"inputs": [1, 2]}, {"inputs": {"a": 1}}, {}, {"inputs": "a", "normalize": "maybe"},
    {"inputs": "a", "dimensions": 0}, {"inputs": "a", "dimensions": 10_000}, {"inputs": "a", "prompt_name": "nope"},
    {"inputs": "a", "truncation_direction": "up"}, [1, 2], "text",
])
def test_wrong_types_are_422(http: httpx.Client, body: Any) -> None:
    r = http.post("/embed", json=body)
    assert r.status_code == 422 and r.json()["error_type"] == "validation" and r.json()["error"]


def test_bad_json_empty_and_too_many(http: httpx.Client) -> None:
    r = http.post("/embed", content=b'{"inputs": [', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error_type"] == "validation"
    assert http.post("/embed", json={"inputs": []}).json() == {"error": "`inputs` cannot be empty",
                                                               "error_type": "empty"}
    r = http.post("/embed", json={"inputs": ["a"] * 33})
    assert r.status_code == 422
    assert r.json() == {"error": "batch size 33 > maximum allowed batch size 32", "error_type": "validation"}
    assert http.post("/models/dense", json={"inputs": ["a"] * 33}).status_code == 422
    r = http.post("/v1/embeddings", json={"input": 5})
    error = r.json()["error"]
    assert r.status_code == 422 and error["code"] == "validation" and error["param"] == "input"


def test_unknown_model_route_and_method(http: httpx.Client) -> None:
    for path, body in (("/models/nope", {"inputs": "a"}), ("/models/org/name", {"inputs": "a"}),
                       ("/embed", {"inputs": "a", "model": "nope"})):
        r = http.post(path, json=body)
        assert r.status_code == 404 and r.json()["error_type"] == "not_found", path
    assert http.post("/embed_sparse", json={"inputs": "a", "model": "dense"}).status_code == 424
    assert http.get("/nowhere").json()["error_type"] == "not_found"
    r = http.get("/embed")
    assert r.status_code == 405 and "error" in r.json() and r.headers["allow"] == "POST"


def test_truncate_and_direction(http: httpx.Client) -> None:
    ref = fixture_models()["dense"]
    r = http.post("/embed", json={"inputs": LONG})
    assert r.status_code == 422 and "must have less than 64 tokens" in r.json()["error"]
    right = http.post("/embed", json={"inputs": LONG, "truncate": True, "normalize": False}).json()
    np.testing.assert_allclose(right[0], ref.encode(LONG), atol=1e-5)
    left = http.post("/embed", json={"inputs": "omega " + LONG, "truncate": True, "normalize": False,
                                     "truncation_direction": "Left"}).json()
    with truncating_from("left"):
        expected = ref.encode("omega " + LONG)
    np.testing.assert_allclose(left[0], expected, atol=1e-5)
    assert not np.allclose(left[0], ref.encode("omega " + LONG), atol=1e-4)
    assert http.post("/models/dense", json={"inputs": LONG}).status_code == 200  # the Inference API truncates
    assert http.post("/models/dense", json={"inputs": LONG, "parameters": {"truncate": False}}).status_code == 422


def test_queue_full_is_429() -> None:
    model = SentenceTransformer(str(fixture_dir("dense-mean")))
    entered, release = threading.Event(), threading.Event()
    encode = model.encode

    def blocking_encode(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(30)
        return encode(*args, **kwargs)

    model.encode = blocking_encode  # type: ignore[method-assign]
    # the first request runs; the second fills the token budget; the third is refused at once
    budget = sum(TokenLimit(model).count(["first", "second"]))
    with live_server({"dense": model}, max_queue_tokens=budget) as url, client(url) as c:
        results: list[int] = []
        threads = [threading.Thread(target=lambda t=t: results.append(
            c.post("/embed", json={"inputs": t}).status_code)) for t in ("first", "second")]
        threads[0].start()
        assert entered.wait(10)
        threads[1].start()
        deadline = time.monotonic() + 10
        while 'te_queue_size{model="dense"} 1' not in c.get("/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        r = c.post("/embed", json={"inputs": "third"})
        assert r.status_code == 429 and r.json() == {"error": "Model is overloaded", "error_type": "overloaded"}
        assert int(r.headers["retry-after"]) >= 1
        release.set()
        for t in threads:
            t.join(30)
        assert sorted(results) == [200, 200]


def test_server_still_up(http: httpx.Client) -> None:
    assert http.get("/health").status_code == 200
    assert http.post("/embed", json={"inputs": "still here"}).status_code == 200


LOOK_ALIKES = {"bool": [0, 1, 0.0, 1.0, "true", "yes", "1"], "int": [5.0, "5", True]}
ROUTE_FIELDS = [  # (route, a valid body, its bool fields, its int fields)
    ("/embed", {"inputs": "a"}, ["truncate", "normalize"], ["dimensions"]),
    ("/embed_all", {"inputs": ""}, ["truncate"], []),
    ("/embed_sparse", {"inputs": "a", "model": "sparse"}, ["truncate"], []),
    ("/rerank", {"query": "q", "texts": ["a"], "model": "cross"}, ["truncate", "raw_scores", "return_text"], []),
    ("/tokenize", {"inputs": "a"}, ["add_special_tokens"], []),
    ("/decode", {"ids": [1, 2]}, ["skip_special_tokens"], []),
    ("/v1/embeddings", {"input": "a", "model": "dense"}, ["truncate"], ["dimensions"]),
    ("/models/dense", {"inputs": "a"}, ["normalize", "truncate"], ["dimensions"]),
    ("/v1/rerank", {"query": "q", "documents": ["a"], "model": "cross"}, ["return_documents"],
     ["top_n", "max_tokens_per_doc"]),
]


@pytest.mark.parametrize(("route", "body", "bools", "ints"), ROUTE_FIELDS, ids=[r[0] for r in ROUTE_FIELDS])
def test_json_types_are_not_coerced(http: httpx.Client, route: str, body: dict[str, Any], bools: list[str],
                                    ints: list[str]) -> None:
    """`0.0` is not `false` and `"5"` is not `5`, as text-embeddings-inference's parser has it."""
    assert http.post(route, json=body).status_code == 200, route
    for fields, kind in ((bools, "bool"), (ints, "int")):
        for field in fields:
            for value in LOOK_ALIKES[kind]:
                r = http.post(route, json={**body, field: value})
                assert r.status_code == 422, (route, field, value, r.status_code)
    if route == "/decode":
        assert http.post(route, json={"ids": [1.0, 2]}).status_code == 422
