"""MaxSim in NumPy: the definition, chunking under a memory budget, the input forms, Qdrant's format."""

from __future__ import annotations

import numpy as np
import pytest

from onnx_st import InputError, maxsim, maxsim_pairwise, to_qdrant_multivector
from onnx_st.maxsim import EMPTY_DOCUMENT_SCORE, mean_maxsim, mean_maxsim_pairwise


def _ragged(rng: np.random.Generator, n: int, lo: int, hi: int, dim: int = 8) -> list[np.ndarray]:
    return [rng.standard_normal((int(rng.integers(lo, hi)), dim)).astype(np.float32) for _ in range(n)]


def _definition(q: np.ndarray, d: np.ndarray) -> float:
    return float(sum(max(float(qi @ dj) for dj in d) for qi in q))


def test_equals_the_definition_for_any_budget() -> None:
    rng = np.random.default_rng(0)
    queries, documents = _ragged(rng, 5, 1, 9), _ragged(rng, 23, 1, 30)
    expected = np.array([[_definition(q, d) for d in documents] for q in queries])
    for budget in (None, 1, 50, 1000):
        np.testing.assert_allclose(maxsim(queries, documents, chunk_elements=budget), expected, rtol=1e-5, atol=1e-4)
    lengths = np.array([len(q) for q in queries], dtype=np.float32)[:, None]
    np.testing.assert_allclose(mean_maxsim(queries, documents), expected / lengths, rtol=1e-5, atol=1e-4)
    pairs = np.array([_definition(q, d) for q, d in zip(queries, documents[:5])])
    np.testing.assert_allclose(maxsim_pairwise(queries, documents[:5]), pairs, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(mean_maxsim_pairwise(queries, documents[:5]), pairs / lengths[:, 0], rtol=1e-5,
                               atol=1e-4)


def test_padded_and_single_inputs() -> None:
    rng = np.random.default_rng(1)
    documents = _ragged(rng, 4, 2, 6)
    padded = np.zeros((4, 6, 8), dtype=np.float32)
    for i, d in enumerate(documents):
        padded[i, :len(d)] = d
    query = rng.standard_normal((3, 8)).astype(np.float32)
    np.testing.assert_allclose(maxsim(query, padded), maxsim([query], documents), rtol=1e-6)
    assert maxsim(query, documents).shape == (1, 4)


def test_empty_documents_queries_and_collections() -> None:
    query = np.ones((2, 4), dtype=np.float32)
    scores = maxsim([query, np.zeros((0, 4), np.float32)], [np.zeros((0, 4), np.float32), np.ones((1, 4))])
    np.testing.assert_allclose(scores, [[EMPTY_DOCUMENT_SCORE, 8.0], [EMPTY_DOCUMENT_SCORE, 0.0]])
    assert maxsim([], [query]).shape == (0, 1) and maxsim([query], []).shape == (1, 0)
    assert maxsim_pairwise([], []).shape == (0,)


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="dimensions"):
        maxsim([np.ones((2, 4))], [np.ones((2, 5))])
    with pytest.raises(InputError):
        maxsim(np.ones(4), [np.ones((2, 4))])
    with pytest.raises(InputError):
        maxsim("text", [np.ones((2, 4))])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="chunk_elements"):
        maxsim([np.ones((2, 4))], [np.ones((2, 4))], chunk_elements=0)


def test_qdrant_multivector_format() -> None:
    vectors = to_qdrant_multivector([np.eye(2, dtype=np.float32), np.ones((1, 2))])
    assert vectors == [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0]]]
    assert all(isinstance(x, float) for point in vectors for row in point for x in row)
