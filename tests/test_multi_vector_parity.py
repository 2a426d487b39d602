"""Parity of MultiVectorEncoder with sentence-transformers on real weights (needs the export extra).

The model is all-MiniLM-L6-v2's real encoder loaded as a bare transformer by sentence-transformers'
``MultiVectorEncoder`` under ``torch.manual_seed(0)`` (a seeded 384->128 token Dense, MultiVectorMask,
token Normalize), plus a variant with query expansion, a document length and a punctuation skiplist
(see :mod:`tools.multi_vector_models`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import onnx_st
from exporter.corpus import sample_texts

pytestmark = pytest.mark.real

ATOL = 1e-5  # per component of each token vector
SCORE_ATOL = 1e-4  # MaxSim scores
TEXTS = sample_texts(500, seed=21, long_fraction=0.1) + ["", "a", "Ünïcödé café naïve Zürich 東京 🙂?", "x " * 3000,
                                                         "Hello, world... (punctuation!) -- #tags; 100% sure."]
QUERIES = [" ".join(t.split()[:12]) for t in sample_texts(40, seed=22, long_fraction=0.0)] + ["", "a " * 50]


def _compare(reference: list[Any], ours: list[np.ndarray]) -> None:
    assert len(reference) == len(ours)
    assert [tuple(r.shape) for r in reference] == [o.shape for o in ours], "token counts differ"
    worst = max(float(np.abs(r.numpy() - o).max()) for r, o in zip(reference, ours) if len(o))
    assert worst <= ATOL, f"largest component difference {worst:.2e}"


@pytest.fixture(scope="module", params=["base", "expansion"])
def models(request: pytest.FixtureRequest) -> tuple[Any, onnx_st.MultiVectorEncoder, str]:
    """(sentence-transformers MultiVectorEncoder, onnx-st MultiVectorEncoder, variant) on the exported directory."""
    from sentence_transformers import MultiVectorEncoder

    from tools.multi_vector_models import minilm_multi_vector

    _, exported = minilm_multi_vector(request.param)
    return MultiVectorEncoder(str(exported), device="cpu"), onnx_st.MultiVectorEncoder(str(exported)), request.param


def test_configuration_matches(models: tuple[Any, onnx_st.MultiVectorEncoder, str]) -> None:
    reference, ours, _ = models
    assert ours.get_embedding_dimension() == reference.get_embedding_dimension() == 128
    assert ours.max_seq_length == reference.max_seq_length
    assert ours.prompts == {k: v or "" for k, v in reference.prompts.items()}


def test_documents_and_maxsim_equal_sentence_transformers(models: tuple[Any, onnx_st.MultiVectorEncoder, str]) -> None:
    reference, ours, variant = models
    texts = TEXTS if variant == "base" else TEXTS[:100] + TEXTS[-5:]  # the variant differs in settings only
    ref_docs, our_docs = reference.encode_document(texts), ours.encode_document(texts)
    _compare(ref_docs, our_docs)
    ref_queries, our_queries = reference.encode_query(QUERIES), ours.encode_query(QUERIES)
    _compare(ref_queries, our_queries)
    expected = reference.similarity(ref_queries, ref_docs).numpy()
    np.testing.assert_allclose(ours.similarity(our_queries, our_docs), expected, rtol=0, atol=SCORE_ATOL)
    np.testing.assert_allclose(ours.similarity(our_queries, our_docs, chunk_elements=100_000), expected, rtol=0,
                               atol=SCORE_ATOL)
    pairs = slice(0, len(QUERIES))
    np.testing.assert_allclose(ours.similarity_pairwise(our_queries, our_docs[pairs]),
                               reference.similarity_pairwise(ref_queries, ref_docs[pairs]).numpy(), rtol=0,
                               atol=SCORE_ATOL)


def test_queries_equal_sentence_transformers(models: tuple[Any, onnx_st.MultiVectorEncoder, str]) -> None:
    reference, ours, _ = models
    texts = TEXTS[::10] + TEXTS[-5:]  # long texts as queries: truncated (or cut at the expansion length)
    _compare(reference.encode_query(texts), ours.encode_query(texts))
    _compare(reference.encode(texts[:20]), ours.encode(texts[:20]))


@pytest.mark.parametrize("name", ["multi-vector-pylate", "multi-vector-stanford"])
def test_legacy_saved_native_loads_in_sentence_transformers(name: str, tmp_path: Any) -> None:
    """A legacy directory saved by onnx-st reads in sentence-transformers as the original does."""
    from sentence_transformers import MultiVectorEncoder

    from .conftest import fixture_dir, fixture_inputs

    onnx_st.MultiVectorEncoder(str(fixture_dir(name))).save_pretrained(tmp_path / "native")
    original, saved = MultiVectorEncoder(str(fixture_dir(name)), device="cpu"), MultiVectorEncoder(
        str(tmp_path / "native"), device="cpu")
    texts = fixture_inputs(name)
    for method in ("encode_query", "encode_document"):
        _compare(getattr(original, method)(texts), [t.numpy() for t in getattr(saved, method)(texts)])
