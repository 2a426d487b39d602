"""The server on a multi-vector model: TEI's /embed_all, the Inference API's feature extraction and similarity."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from onnx_st import MultiVectorEncoder, SentenceTransformer

from .conftest import fixture_dir, fixture_inputs
from .server_helpers import client, live_server

NAME = "multi-vector-expansion"
TEXTS = fixture_inputs(NAME)[:6]


def _models() -> dict[str, Any]:
    return {"colbert": MultiVectorEncoder(str(fixture_dir(NAME))),
            "dense": SentenceTransformer(str(fixture_dir("dense-mean")))}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with live_server(_models()) as url, client(url) as c:
        yield c


@pytest.fixture(scope="module")
def ref() -> dict[str, Any]:
    return _models()


def _close(got: list[Any], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.array(g, dtype=np.float32), w, atol=1e-5)


def test_embed_all_gives_document_or_query_vectors(http: httpx.Client, ref: dict[str, Any]) -> None:
    model = ref["colbert"]
    r = http.post("/embed_all", json={"inputs": TEXTS, "model": "colbert"})
    assert r.status_code == 200
    _close(r.json(), model.encode_document(TEXTS))
    _close(http.post("/embed_all", json={"inputs": TEXTS}).json(), model.encode_document(TEXTS))
    queries = http.post("/embed_all", json={"inputs": TEXTS, "prompt_name": "query"}).json()
    _close(queries, model.encode_query(TEXTS))
    assert all(len(q) == 16 for q in queries)  # expanded with [MASK] to the query length


def test_embed_all_of_a_dense_model_gives_its_token_embeddings(http: httpx.Client, ref: dict[str, Any]) -> None:
    got = http.post("/embed_all", json={"inputs": TEXTS[:3], "model": "dense"}).json()
    _close(got, ref["dense"].encode(TEXTS[:3], output_value="token_embeddings"))


def test_inference_api_feature_extraction_and_similarity(http: httpx.Client, ref: dict[str, Any]) -> None:
    model = ref["colbert"]
    _close(http.post("/models/colbert", json={"inputs": TEXTS}).json(), model.encode_document(TEXTS))
    single = http.post("/models/colbert", json={"inputs": TEXTS[0]}).json()
    _close([single], [model.encode_document(TEXTS[0])])
    body = {"inputs": {"source_sentence": TEXTS[2], "sentences": TEXTS[3:]}}
    expected = model.similarity(model.encode_query([TEXTS[2]]), model.encode_document(TEXTS[3:]))[0]
    np.testing.assert_allclose(http.post("/models/colbert", json=body).json(), expected, rtol=1e-5, atol=1e-4)


def test_wrong_routes_are_refused(http: httpx.Client) -> None:
    assert http.post("/embed", json={"inputs": "x", "model": "colbert"}).status_code == 424
    assert http.post("/embed_all", json={"inputs": "x", "model": "nope"}).status_code == 404
    assert http.post("/embed_all", json={"inputs": "x", "prompt_name": "nope"}).status_code == 422
