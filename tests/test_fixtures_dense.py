"""The dense encoder on tiny seeded fixtures equals the golden outputs of sentence-transformers (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

import onnx_st

from .conftest import fixture_dir, fixture_expected, fixture_inputs, fixture_names

DENSE = fixture_names("dense-")
ATOL = 1e-5


@pytest.fixture(scope="module", params=DENSE)
def case(request: pytest.FixtureRequest) -> tuple[str, onnx_st.SentenceTransformer]:
    return request.param, onnx_st.SentenceTransformer(str(fixture_dir(request.param)))


def test_every_layout_is_covered() -> None:
    for name in ("dense-mean", "dense-cls", "dense-max", "dense-mean-sqrt", "dense-weightedmean", "dense-lasttoken",
                 "dense-mean-exclude-prompt", "dense-multi-pooling", "dense-dense-layer", "dense-do-lower-case",
                 "dense-router", "dense-static"):
        assert name in DENSE


def test_encode(case: tuple[str, onnx_st.SentenceTransformer]) -> None:
    name, model = case
    texts, expected = fixture_inputs(name), fixture_expected(name)
    got = model.encode(texts)
    assert got.dtype == np.float32 and got.shape == expected["encode"].shape
    np.testing.assert_allclose(got, expected["encode"], atol=ATOL)
    np.testing.assert_allclose(model.encode(texts, normalize_embeddings=True), expected["encode_normalized"],
                               atol=ATOL)
    np.testing.assert_allclose(model.similarity(got, got), expected["similarity"], atol=ATOL)


def test_batch_size_and_order_do_not_change_results(case: tuple[str, onnx_st.SentenceTransformer]) -> None:
    name, model = case
    texts, expected = fixture_inputs(name), fixture_expected(name)
    for batch_size in (1, 5):
        np.testing.assert_allclose(model.encode(texts, batch_size=batch_size), expected["encode"], atol=ATOL)
    np.testing.assert_allclose(model.encode(texts[::-1])[::-1], expected["encode"], atol=ATOL)
    np.testing.assert_allclose(model.encode(texts[3]), expected["encode"][3], atol=ATOL)


def test_query_and_document(case: tuple[str, onnx_st.SentenceTransformer]) -> None:
    name, model = case
    texts, expected = fixture_inputs(name), fixture_expected(name)
    if "encode_query" not in expected:
        assert "query" not in model.prompts or not model.prompts["query"]
        return
    np.testing.assert_allclose(model.encode_query(texts), expected["encode_query"], atol=ATOL)
    np.testing.assert_allclose(model.encode_document(texts), expected["encode_document"], atol=ATOL)


def test_token_embeddings(case: tuple[str, onnx_st.SentenceTransformer]) -> None:
    name, model = case
    expected = fixture_expected(name)
    if "token_embeddings" not in expected:
        return
    got = model.encode(fixture_inputs(name), output_value="token_embeddings")
    assert [len(g) for g in got] == expected["token_embeddings_lengths"].tolist()
    np.testing.assert_allclose(np.concatenate(got), expected["token_embeddings"], atol=ATOL)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_precisions(precision: str) -> None:
    model = onnx_st.SentenceTransformer(str(fixture_dir("dense-mean")))
    expected = fixture_expected("dense-mean")[precision]
    got = model.encode(fixture_inputs("dense-mean"), precision=precision)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= (1 if precision.endswith("int8") else 0)


def test_prompts_and_truncate_dim() -> None:
    model = onnx_st.SentenceTransformer(str(fixture_dir("dense-mean")))
    texts, expected = fixture_inputs("dense-mean"), fixture_expected("dense-mean")
    np.testing.assert_allclose(model.encode(texts, prompt_name="query"), expected["encode_query"], atol=ATOL)
    np.testing.assert_allclose(model.encode(texts, prompt="query: "), expected["encode_query"], atol=ATOL)
    np.testing.assert_allclose(model.encode(texts, truncate_dim=8), expected["encode"][:, :8], atol=ATOL)
    with model.truncate_embeddings(4):
        assert model.encode(texts).shape == (len(texts), 4)
        assert model.get_embedding_dimension() == 4
    truncated = onnx_st.SentenceTransformer(str(fixture_dir("dense-mean")), truncate_dim=8)
    assert truncated.encode(texts).shape == (len(texts), 8)


def test_save_pretrained_reloads_offline(tmp_path: object) -> None:
    from pathlib import Path

    target = Path(str(tmp_path)) / "saved"
    model = onnx_st.SentenceTransformer(str(fixture_dir("dense-router")))
    model.save_pretrained(target)
    reloaded = onnx_st.SentenceTransformer(str(target), backend="onnx", local_files_only=True,
                                           model_kwargs={"provider": "CPUExecutionProvider"})
    texts = fixture_inputs("dense-router")
    np.testing.assert_allclose(reloaded.encode_query(texts), model.encode_query(texts), atol=0)
    assert reloaded.get_backend() == "onnx"


def test_similarity_functions() -> None:
    model = onnx_st.SentenceTransformer(str(fixture_dir("dense-dense-layer")))
    assert model.similarity_fn_name == "dot"
    emb = model.encode(fixture_inputs("dense-dense-layer"))
    np.testing.assert_allclose(model.similarity(emb, emb), emb @ emb.T, atol=ATOL)
    np.testing.assert_allclose(model.similarity_pairwise(emb, emb), (emb * emb).sum(1), atol=ATOL)
    for name in ("cosine", "euclidean", "manhattan"):
        model.similarity_fn_name = name
        full, pairs = model.similarity(emb, emb[::-1]), model.similarity_pairwise(emb, emb[::-1])
        np.testing.assert_allclose(np.diag(full), pairs, atol=1e-4)
