"""The server as real clients call it: huggingface_hub's InferenceClient, openai, LangChain, Cohere's SDK, tei-client."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import cohere
import httpx
import numpy as np
import pytest
from huggingface_hub import InferenceClient
from langchain_openai import OpenAIEmbeddings
from openai import OpenAI

from .server_helpers import SEED_SENTENCES, SEED_SOURCE, client, fixture_models, live_server

TEXTS = ["The cat sits outside", "A man is playing guitar", "The new movie is awesome"]
LONG = " ".join(["a long document keeps going"] * 60)  # 1,700 characters, far over 64 tokens


@pytest.fixture(scope="module")
def ref() -> dict[str, Any]:
    return fixture_models()


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with live_server() as base:
        yield base


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(autouse=True)
def _online_to_this_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub refuses every HTTP request in offline mode (set for the suite: the Hub is unreachable),
    even one to this local server; the clients here talk only to 127.0.0.1."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def test_inference_client_by_model_url(url: str, ref: dict[str, Any]) -> None:
    hf = InferenceClient(model=f"{url}/models/dense", token="unused")
    got = hf.feature_extraction(TEXTS[0], normalize=False, prompt_name="query", dimensions=8, truncate=True)
    np.testing.assert_allclose(np.asarray(got).reshape(-1), ref["dense"].encode(
        TEXTS[0], prompt_name="query", truncate_dim=8), atol=1e-5)
    scores = hf.sentence_similarity(SEED_SOURCE, other_sentences=SEED_SENTENCES)
    dense = ref["dense"]
    expected = dense.similarity(dense.encode([SEED_SOURCE]), dense.encode(SEED_SENTENCES))[0]
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    cross = InferenceClient(model=f"{url}/models/cross", token="unused")
    np.testing.assert_allclose(cross.sentence_similarity(SEED_SOURCE, other_sentences=SEED_SENTENCES),
                               ref["cross"].predict([(SEED_SOURCE, s) for s in SEED_SENTENCES]), atol=1e-5)


def test_inference_client_by_base_url(url: str, ref: dict[str, Any]) -> None:
    hf = InferenceClient(base_url=url, token="unused")  # the first served model is the dense one
    got = np.asarray(hf.feature_extraction(TEXTS[1], normalize=True, truncate=True))
    np.testing.assert_allclose(got.reshape(-1), ref["dense"].encode(TEXTS[1], normalize_embeddings=True), atol=1e-5)
    dense = ref["dense"]
    expected = dense.similarity(dense.encode([SEED_SOURCE]), dense.encode(SEED_SENTENCES))[0]
    np.testing.assert_allclose(hf.sentence_similarity(SEED_SOURCE, other_sentences=SEED_SENTENCES), expected,
                               atol=1e-5)


def test_openai_client(url: str, ref: dict[str, Any]) -> None:
    oa = OpenAI(base_url=f"{url}/v1", api_key="unused", http_client=httpx.Client(trust_env=False))
    expected = ref["dense"].encode(TEXTS, normalize_embeddings=True)
    listed = oa.embeddings.create(input=TEXTS, model="dense")  # the client asks for base64 by default
    np.testing.assert_allclose([d.embedding for d in listed.data], expected, atol=1e-5)
    single = oa.embeddings.create(input=TEXTS[0], model="dense", encoding_format="float")
    np.testing.assert_allclose(single.data[0].embedding, expected[0], atol=1e-5)
    short = oa.embeddings.create(input=TEXTS, model="dense", dimensions=8, encoding_format="base64")
    decoded = [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in short.data]  # type: ignore
    np.testing.assert_allclose(decoded, _unit(ref["dense"].encode(TEXTS)[:, :8]), atol=1e-5)
    with pytest.raises(Exception) as info:
        oa.embeddings.create(input=TEXTS, model="no-such-model")
    assert getattr(info.value, "status_code", None) == 404 and "no-such-model" in str(info.value)


def test_langchain_openai_embeddings_defaults(url: str, ref: dict[str, Any]) -> None:
    """Its defaults: 1,000 inputs per request, long documents sent as they are."""
    lc = OpenAIEmbeddings(base_url=f"{url}/v1", model="dense", api_key="unused", check_embedding_ctx_length=False,
                          http_client=httpx.Client(trust_env=False))
    docs = [f"{LONG} {i}" for i in range(1100)] + TEXTS
    got = np.asarray(lc.embed_documents(docs))
    assert got.shape[0] == len(docs)
    np.testing.assert_allclose(got[-3:], ref["dense"].encode(TEXTS, normalize_embeddings=True), atol=1e-5)
    np.testing.assert_allclose(got[:2], ref["dense"].encode(docs[:2], normalize_embeddings=True), atol=1e-5)
    np.testing.assert_allclose(lc.embed_query(TEXTS[0]), ref["dense"].encode(TEXTS[0], normalize_embeddings=True),
                               atol=1e-5)


def test_cohere_and_jina_rerank(url: str, ref: dict[str, Any]) -> None:
    docs = [SEED_SENTENCES[0], {"text": SEED_SENTENCES[1]}, SEED_SENTENCES[2]]
    with client(url) as c:
        for path in ("/v1/rerank", "/v2/rerank"):
            r = c.post(path, json={"model": "cross", "query": SEED_SOURCE, "documents": docs, "top_n": 2,
                                   "return_documents": True})
            assert r.status_code == 200, r.text
            expected = ref["cross"].rank(SEED_SOURCE, SEED_SENTENCES, return_documents=True)[:2]
            results = r.json()["results"]
            assert [x["index"] for x in results] == [e["corpus_id"] for e in expected]
            np.testing.assert_allclose([x["relevance_score"] for x in results], [e["score"] for e in expected],
                                       atol=1e-5)
            assert [x["document"]["text"] for x in results] == [e["text"] for e in expected]
        r = c.post("/v1/rerank", json={"model": "dense", "query": "q", "documents": ["d"]})
        assert r.status_code == 424 and r.json()["error"]["message"]


def test_cohere_sdk_rerank_v1_and_v2(url: str, ref: dict[str, Any]) -> None:
    """Cohere's own SDK against /v1/rerank (Client) and /v2/rerank (ClientV2), errors included."""
    expected = ref["cross"].rank(SEED_SOURCE, SEED_SENTENCES, return_documents=True)[:2]
    v2 = cohere.ClientV2(api_key="unused", base_url=url)
    results = v2.rerank(model="cross", query=SEED_SOURCE, documents=SEED_SENTENCES, top_n=2).results
    assert [x.index for x in results] == [e["corpus_id"] for e in expected]
    np.testing.assert_allclose([x.relevance_score for x in results], [e["score"] for e in expected], atol=1e-5)
    v1 = cohere.Client(api_key="unused", base_url=url)
    results_v1 = v1.rerank(model="cross", query=SEED_SOURCE, documents=SEED_SENTENCES, top_n=2,
                           return_documents=True).results
    assert [x.index for x in results_v1] == [e["corpus_id"] for e in expected]
    assert [x.document.text for x in results_v1 if x.document] == [e["text"] for e in expected]
    with pytest.raises(cohere.core.ApiError) as err:
        v2.rerank(model="dense", query="q", documents=["d"])
    assert err.value.status_code == 424


def test_tei_client_on_each_model_endpoint_of_a_multi_model_server(url: str, ref: dict[str, Any]) -> None:
    """tei-client given a model's own TEI endpoint (``/models/{id}``): its /info, prompt names, embed,
    embed_all, tokenize/decode, rerank and classify (several labels)."""
    from tei_client import HttpClient, ModelType

    from onnx_st._runtime.config import HFConfig

    dense, cross, cross3 = ref["dense"], ref["cross"], ref["cross3"]
    client = HttpClient(f"{url}/models/dense", trust_env=False)
    assert client.info().server_model_type == ModelType.Embedding
    assert sorted(client.prompt_names()) == sorted(dense.prompts)
    np.testing.assert_allclose(client.embed(TEXTS, normalize=True), dense.encode(TEXTS, normalize_embeddings=True),
                               atol=1e-5)
    for got, want in zip(client.embed_all(TEXTS[:2]), dense.encode(TEXTS[:2], output_value="token_embeddings")):
        np.testing.assert_allclose(got, want, atol=1e-5)
    ids = [row.get_ids() for row in client.tokenize(TEXTS[:2])]
    assert ids == [dense.tokenizer.encode(t).ids for t in TEXTS[:2]]
    assert client.decode(ids) == dense.tokenizer.decode_batch(ids)

    reranker = HttpClient(f"{url}/models/cross", trust_env=False)
    assert reranker.info().server_model_type == ModelType.Reranker
    ranks = reranker.rerank(SEED_SOURCE, SEED_SENTENCES).ranks
    expected = cross.rank(SEED_SOURCE, SEED_SENTENCES)
    assert [r.index for r in ranks] == [r["corpus_id"] for r in expected]
    np.testing.assert_allclose([r.score for r in ranks], [r["score"] for r in expected], atol=1e-5)

    classifier = HttpClient(f"{url}/models/cross3", trust_env=False)
    assert classifier.info().server_model_type == ModelType.Classifier
    got = {s.label: s.score for s in classifier.classify([(SEED_SOURCE, SEED_SENTENCES[0])])[0].scores}
    scores = cross3.predict([(SEED_SOURCE, SEED_SENTENCES[0])])[0]
    labels = HFConfig.read(cross3.model_dir).id2label
    assert got == pytest.approx({labels[i]: float(v) for i, v in enumerate(scores)}, abs=1e-5)
