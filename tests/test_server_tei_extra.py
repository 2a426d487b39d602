"""TEI routes beyond the basics: POST / and /invocations, /predict, /embed_all, /decode; Inference API options."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from .server_helpers import SEED_SENTENCES, SEED_SOURCE, client, fixture_models, live_server

TEXTS = ["The cat sits outside", "A man is playing guitar"]


@pytest.fixture(scope="module")
def ref() -> dict[str, Any]:
    return fixture_models()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with live_server() as url, client(url) as c:
        yield c


def test_root_and_invocations_by_kind(http: httpx.Client, ref: dict[str, Any]) -> None:
    for path in ("/", "/invocations"):
        r = http.post(path, json={"inputs": TEXTS, "normalize": False})  # the first model: dense -> /embed
        np.testing.assert_allclose(r.json(), ref["dense"].encode(TEXTS), atol=1e-5)
        r = http.post(path, json={"inputs": TEXTS[0], "model": "sparse"})
        assert r.status_code == 200 and {"index", "value"} <= set(r.json()[0][0])
        r = http.post(path, json={"query": SEED_SOURCE, "texts": SEED_SENTENCES, "model": "cross"})
        expected = ref["cross"].rank(SEED_SOURCE, SEED_SENTENCES)
        assert [x["index"] for x in r.json()] == [e["corpus_id"] for e in expected]
        r = http.post(path, json={"inputs": {"source_sentence": SEED_SOURCE, "sentences": SEED_SENTENCES}})
        dense = ref["dense"]
        np.testing.assert_allclose(r.json(), dense.similarity(dense.encode([SEED_SOURCE]),
                                                              dense.encode(SEED_SENTENCES))[0], atol=1e-5)
        r = http.post(path, json={"inputs": [TEXTS[0], TEXTS[1]], "model": "cross3"})  # a classifier: /predict
        assert r.status_code == 200 and len(r.json()) == 3
    assert http.post("/", json=[1, 2]).status_code == 422
    assert http.post("/", json={"inputs": 5}).status_code == 422


def test_predict_labels(http: httpx.Client, ref: dict[str, Any]) -> None:
    pairs = [[SEED_SOURCE, s] for s in SEED_SENTENCES]
    r = http.post("/predict", json={"inputs": pairs, "model": "cross3"})
    scores = ref["cross3"].predict([tuple(p) for p in pairs])
    labels = ref["cross3"]._hf_config.id2label or {}
    for got, row in zip(r.json(), scores):
        order = np.argsort(-row, kind="stable")
        assert [g["label"] for g in got] == [labels.get(i, labels.get(str(i), f"LABEL_{i}")) for i in order]
        np.testing.assert_allclose([g["score"] for g in got], row[order], atol=1e-5)
    single = http.post("/predict", json={"inputs": pairs[0], "model": "cross"}).json()
    np.testing.assert_allclose(single[0]["score"], ref["cross"].predict(tuple(pairs[0])), atol=1e-5)
    assert http.post("/predict", json={"inputs": "one text", "model": "cross"}).status_code == 422
    assert http.post("/predict", json={"inputs": pairs[0], "model": "dense"}).status_code == 424


def test_embed_all_is_token_embeddings(http: httpx.Client, ref: dict[str, Any]) -> None:
    r = http.post("/embed_all", json={"inputs": TEXTS, "model": "dense"})
    expected = ref["dense"].encode(TEXTS, output_value="token_embeddings")
    for got, exp in zip(r.json(), expected):
        np.testing.assert_allclose(np.asarray(got), exp, atol=1e-5)
    assert http.post("/embed_all", json={"inputs": "x", "model": "cross"}).status_code == 424


def test_decode(http: httpx.Client, ref: dict[str, Any]) -> None:
    ids = http.post("/tokenize", json={"inputs": TEXTS[0]}).json()[0]
    r = http.post("/decode", json={"ids": [t["id"] for t in ids]})
    assert r.status_code == 200 and r.json()[0].replace(" ", "") == TEXTS[0].lower().replace(" ", "")
    assert http.post("/decode", json={"ids": [[1, 2], [3]]}).status_code == 200
    assert http.post("/decode", json={"ids": [10**9]}).status_code == 422
    assert http.post("/decode", json={"ids": []}).status_code == 400


def test_inference_api_options_at_top_level(http: httpx.Client, ref: dict[str, Any]) -> None:
    dense = ref["dense"]
    expected = dense.encode(TEXTS[0], prompt_name="query", truncate_dim=8)
    for body in ({"inputs": TEXTS[0], "normalize": False, "prompt_name": "query", "dimensions": 8},
                 {"inputs": TEXTS[0], "parameters": {"normalize": False, "prompt_name": "query", "dimensions": 8}},
                 {"inputs": TEXTS[0], "parameters": {"prompt_name": "document", "dimensions": 4},
                  "prompt_name": "query", "dimensions": 8}):
        for path in ("/models/dense", "/models/dense/pipeline/feature-extraction"):
            r = http.post(path, json=body, headers={"x-use-cache": "false"})
            np.testing.assert_allclose(r.json(), expected, atol=1e-5)
    r = http.post("/models/dense", json={"inputs": "x", "prompt_name": "nope"})
    assert r.status_code == 422 and "Available prompts: [" in r.json()["error"]


def test_openai_batch_limit_and_truncation(http: httpx.Client) -> None:
    r = http.post("/v1/embeddings", json={"input": ["a b"] * 2048, "model": "dense"})
    assert r.status_code == 200 and len(r.json()["data"]) == 2048
    r = http.post("/v1/embeddings", json={"input": ["a"] * 2049, "model": "dense"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation"
    long = "word " * 500
    assert http.post("/v1/embeddings", json={"input": long, "model": "dense"}).status_code == 200
    assert http.post("/v1/embeddings", json={"input": long, "model": "dense", "truncate": False}).status_code == 422


def test_errors_carry_no_paths(tmp_path: Any) -> None:
    from onnx_st.server.errors import ApiError

    body = ApiError(424, f"ONNX Runtime failed on {tmp_path}/onnx/model.onnx: bad").body()
    assert str(tmp_path) not in body["error"] and "model.onnx" in body["error"]


def test_one_tei_endpoint_per_model(http: httpx.Client, ref: dict[str, Any]) -> None:
    info = http.get("/models/cross/info").json()
    assert info["model_id"] == "cross" and "reranker" in info["model_type"]
    r = http.post("/models/cross/rerank", json={"query": SEED_SOURCE, "texts": SEED_SENTENCES})
    assert [x["index"] for x in r.json()] == [e["corpus_id"] for e in ref["cross"].rank(SEED_SOURCE, SEED_SENTENCES)]
    r = http.post("/models/dense/embed", json={"inputs": TEXTS, "normalize": False})
    np.testing.assert_allclose(r.json(), ref["dense"].encode(TEXTS), atol=1e-5)
    assert http.post("/models/nope/embed", json={"inputs": "x"}).status_code == 404
    assert http.post("/models/dense/rerank", json={"query": "q", "texts": ["t"]}).status_code == 424
