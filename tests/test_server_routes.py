"""Every route of the real server on loopback, answers checked against the Python API."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from onnx_st.functional import normalize

from .conftest import fixture_inputs
from .server_helpers import SEED_PAYLOAD, SEED_SENTENCES, SEED_SOURCE, client, fixture_models, live_server

TEXTS = fixture_inputs("dense-mean")[:6]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with live_server() as url, client(url) as c:
        yield c


@pytest.fixture(scope="module")
def ref() -> dict[str, Any]:
    """Models loaded apart from the server's, for offline expected values."""
    return fixture_models()


def test_seed_curl_payload_gives_the_python_api_scores(http: httpx.Client, ref: dict[str, Any]) -> None:
    model = ref["dense"]
    expected = model.similarity(model.encode([SEED_SOURCE]), model.encode(SEED_SENTENCES))[0]
    r = http.post("/models/dense", content=SEED_PAYLOAD,  # the seed's curl body, byte for byte
                  headers={"Content-Type": "application/json", "Authorization": "Bearer hf_***"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    np.testing.assert_allclose(r.json(), expected, atol=1e-5)
    camel = {"inputs": {"sourceSentence": SEED_SOURCE, "sentences": SEED_SENTENCES}}
    np.testing.assert_allclose(http.post("/models/dense", json=camel).json(), expected, atol=1e-5)


def test_hf_feature_extraction_dense_and_sparse(http: httpx.Client, ref: dict[str, Any]) -> None:
    one = http.post("/models/dense", json={"inputs": TEXTS[1]}).json()
    np.testing.assert_allclose(one, ref["dense"].encode(TEXTS[1]), atol=1e-5)
    many = http.post("/models/dense", json={"inputs": TEXTS, "parameters": {"normalize": True}}).json()
    np.testing.assert_allclose(many, ref["dense"].encode(TEXTS, normalize_embeddings=True), atol=1e-5)
    sparse = http.post("/models/sparse", json={"inputs": TEXTS}).json()
    for row, vec in zip(sparse, ref["sparse"].encode(TEXTS)):
        assert [e["index"] for e in row] == vec.indices.tolist()
        np.testing.assert_allclose([e["value"] for e in row], vec.values, atol=1e-5)


def test_hf_sparse_and_reranker_similarity(http: httpx.Client, ref: dict[str, Any]) -> None:
    payload = {"inputs": {"source_sentence": SEED_SOURCE, "sentences": SEED_SENTENCES}}
    sp = ref["sparse"]
    expected = sp.similarity(sp.encode([SEED_SOURCE]), sp.encode(SEED_SENTENCES))[0]
    np.testing.assert_allclose(http.post("/models/sparse", json=payload).json(), expected, rtol=1e-5)
    cross = ref["cross"]
    scores = cross.predict([(SEED_SOURCE, s) for s in SEED_SENTENCES])
    np.testing.assert_allclose(http.post("/models/cross", json=payload).json(), scores, atol=1e-6)


def test_hf_reranker_ranks_and_pairs(http: httpx.Client, ref: dict[str, Any]) -> None:
    data = fixture_inputs("cross-1label")
    query, docs = data["rank_query"], data["rank_documents"]
    expected = ref["cross"].rank(query, docs, return_documents=True)
    got = http.post("/models/cross", json={"inputs": {"query": query, "texts": docs},
                                           "parameters": {"return_text": True}}).json()
    assert [g["index"] for g in got] == [e["corpus_id"] for e in expected]
    assert [g["text"] for g in got] == [e["text"] for e in expected]
    np.testing.assert_allclose([g["score"] for g in got], [e["score"] for e in expected], atol=1e-6)
    pairs = [list(p) for p in data["pairs"][:5]]
    got3 = http.post("/models/cross3", json={"inputs": pairs}).json()
    np.testing.assert_allclose(got3, ref["cross3"].predict(pairs), atol=1e-5)
    r = http.post("/models/dense", json={"inputs": pairs})
    assert r.status_code == 422 and r.json()["error_type"] == "validation"


def test_embed(http: httpx.Client, ref: dict[str, Any]) -> None:
    model = ref["dense"]
    np.testing.assert_allclose(http.post("/embed", json={"inputs": TEXTS}).json(),
                               model.encode(TEXTS, normalize_embeddings=True), atol=1e-5)
    single = http.post("/embed", json={"inputs": TEXTS[0], "normalize": False}).json()
    assert len(single) == 1
    np.testing.assert_allclose(single[0], model.encode(TEXTS[0]), atol=1e-5)
    r = http.post("/embed", json={"inputs": TEXTS, "prompt_name": "query", "dimensions": 8, "model": "dense"})
    np.testing.assert_allclose(r.json(), normalize(model.encode(TEXTS, prompt_name="query")[:, :8]), atol=1e-5)
    assert int(r.headers["x-compute-tokens"]) > 0


def test_embed_sparse(http: httpx.Client, ref: dict[str, Any]) -> None:
    got = http.post("/embed_sparse", json={"inputs": TEXTS, "prompt_name": "query"}).json()
    for row, vec in zip(got, ref["sparse"].encode(TEXTS, prompt_name="query")):
        assert [e["index"] for e in row] == vec.indices.tolist()
        np.testing.assert_allclose([e["value"] for e in row], vec.values, atol=1e-5)


def test_rerank(http: httpx.Client, ref: dict[str, Any]) -> None:
    data = fixture_inputs("cross-1label")
    query, docs = data["rank_query"], data["rank_documents"]
    too_long = http.post("/rerank", json={"query": query, "texts": docs})  # a 300-word document, no truncate
    assert too_long.status_code == 422 and "must have less than 64 tokens" in too_long.json()["error"]
    got = http.post("/rerank", json={"query": query, "texts": docs, "truncate": True}).json()
    expected = ref["cross"].rank(query, docs)
    assert [g["index"] for g in got] == [e["corpus_id"] for e in expected]
    assert all("text" not in g for g in got)
    np.testing.assert_allclose([g["score"] for g in got], [e["score"] for e in expected], atol=1e-6)
    raw = http.post("/rerank", json={"query": query, "texts": docs, "raw_scores": True, "return_text": True,
                                          "truncate": True}).json()
    logits = ref["cross"].predict([(query, d) for d in docs], activation_fn="torch.nn.Identity")
    np.testing.assert_allclose([g["score"] for g in raw], np.sort(logits)[::-1], atol=1e-5)
    assert [g["text"] for g in raw] == [docs[g["index"]] for g in raw]
    r = http.post("/rerank", json={"query": query, "texts": docs[:2], "model": "cross3"})
    assert r.status_code == 424 and r.json()["error_type"] == "backend"


def test_similarity(http: httpx.Client, ref: dict[str, Any]) -> None:
    model = ref["dense"]
    body = {"inputs": {"source_sentence": SEED_SOURCE, "sentences": SEED_SENTENCES},
            "parameters": {"prompt_name": "document", "truncate": True}}
    expected = model.similarity(model.encode([SEED_SOURCE], prompt_name="document"),
                                model.encode(SEED_SENTENCES, prompt_name="document"))[0]
    np.testing.assert_allclose(http.post("/similarity", json=body).json(), expected, atol=1e-5)
    r = http.post("/similarity", json={"inputs": {"source_sentence": "a", "sentences": []}})
    assert r.status_code == 400 and r.json() == {"error": "`inputs.sentences` cannot be empty", "error_type": "empty"}


def test_tokenize(http: httpx.Client, ref: dict[str, Any]) -> None:
    got = http.post("/tokenize", json={"inputs": ["Hello world", "a"]}).json()
    enc = ref["dense"].tokenizer.encode("Hello world")
    assert [t["id"] for t in got[0]] == enc.ids
    assert got[0][0] == {"id": enc.ids[0], "text": "[CLS]", "special": True, "start": None, "stop": None}
    assert got[0][-2] == {"id": enc.ids[-2], "text": "world", "special": False, "start": 6, "stop": 11}
    plain = http.post("/tokenize", json={"inputs": "Hello", "add_special_tokens": False,
                                         "prompt_name": "query"}).json()
    assert "".join(t["text"] for t in plain[0]).replace(" ", "") == "query:Hello"
    assert not any(t["special"] for t in plain[0])


def test_info_health_metrics_models(http: httpx.Client) -> None:
    info = http.get("/info").json()
    assert info["model_id"] == "dense" and info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["max_input_length"] == 64 and info["max_client_batch_size"] == 32
    assert http.get("/info", params={"model": "cross"}).json()["model_type"] == {
        "reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}
    assert "classifier" in http.get("/info", params={"model": "cross3"}).json()["model_type"]
    assert http.get("/info", params={"model": "nope"}).status_code == 404
    assert http.get("/health").status_code == 200
    assert [m["id"] for m in http.get("/models").json()] == ["dense", "sparse", "cross", "cross3"]
    http.post("/embed", json={"inputs": "metrics"})
    r = http.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "# TYPE te_request_count counter" in text and 'te_request_count{method="single",route="/embed"}' in text
    assert "# TYPE te_request_duration histogram" in text and 'te_request_duration_bucket{route="/embed",le="+Inf"}' in text
    assert 'te_batch_next_size_count{model="dense"}' in text
    http.post("/embed", json={"inputs": 3})
    http.post("/models/nope", json={"inputs": "a"})
    text = http.get("/metrics").text
    assert 'te_request_failure{err="validation",route="/embed"}' in text
    assert 'te_request_failure{err="not_found",route="/models/{model_id}"}' in text


def test_openai_float_and_base64(http: httpx.Client, ref: dict[str, Any]) -> None:
    expected = ref["dense"].encode(TEXTS, normalize_embeddings=True)
    r = http.post("/v1/embeddings", json={"input": TEXTS, "model": "dense"}).json()
    assert r["object"] == "list" and r["model"] == "dense" and r["usage"]["prompt_tokens"] > 0
    assert [d["index"] for d in r["data"]] == list(range(len(TEXTS)))
    np.testing.assert_allclose([d["embedding"] for d in r["data"]], expected, atol=1e-5)
    b = http.post("/v1/embeddings", json={"input": TEXTS[0], "encoding_format": "base64", "dimensions": 16}).json()
    decoded = np.frombuffer(base64.b64decode(b["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, normalize(ref["dense"].encode(TEXTS[:1])[:, :16])[0], atol=1e-5)
    err = http.post("/v1/embeddings", json={"input": "x", "model": "text-embedding-3-small"})
    assert err.status_code == 404 and set(err.json()["error"]) == {"message", "type", "param", "code"}
    assert http.post("/v1/embeddings", json={"input": "x", "model": "cross"}).status_code == 424


def test_openapi_document_describes_the_routes(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/embed", "/embed_sparse", "/rerank", "/similarity", "/tokenize", "/v1/embeddings",
                 "/models/{model_id}"):
        assert "post" in paths[path], path
        responses = paths[path]["post"]["responses"]
        assert {"200", "401", "404", "413", "422", "503"} <= set(responses), path
    for path in ("/info", "/health", "/metrics", "/models"):
        assert "get" in paths[path], path
    embed = doc["components"]["schemas"]["EmbedRequest"]["properties"]
    assert embed["normalize"]["default"] is True and embed["truncation_direction"]["default"] == "Right"
    assert http.get("/docs").status_code == 200
