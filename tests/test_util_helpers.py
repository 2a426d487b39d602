"""``onnx_st.util``: invariants without torch, then the same calls on ``sentence_transformers.util`` when torch is there."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

from onnx_st import SparseEmbeddings, util
from onnx_st.errors import InputError

RNG = np.random.default_rng(0)
A = RNG.normal(size=(7, 12)).astype(np.float32)
B = RNG.normal(size=(5, 12)).astype(np.float32)
CLUSTERS = np.vstack([c + 0.05 * RNG.normal(size=(n, 12)) for c, n in zip(RNG.normal(size=(3, 12)), (12, 8, 3))]
                     ).astype(np.float32)
SPARSE = np.where(RNG.random((6, 40)) < 0.2, RNG.random((6, 40)), 0).astype(np.float32)

ALL_PAIRS = ["cos_sim", "pytorch_cos_sim", "dot_score", "euclidean_sim", "manhattan_sim"]
PAIRWISE = ["pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim",
            "pairwise_angle_sim"]
HAS_ST = importlib.util.find_spec("sentence_transformers") is not None


def test_names_sentence_transformers_code_imports() -> None:
    from onnx_st.util import (  # noqa: F401
        SimilarityFunction,
        community_detection,
        normalize_embeddings,
        paraphrase_mining,
        paraphrase_mining_embeddings,
        quantize_embeddings,
        select_max_active_dims,
        semantic_search,
        truncate_embeddings,
    )


def test_euclidean_self_distance_is_exactly_zero() -> None:
    unit = util.normalize_embeddings(A)
    assert np.all(np.diagonal(util.euclidean_sim(unit, unit)) == 0)
    assert np.all(util.pairwise_euclidean_sim(unit, unit) == 0)


@pytest.mark.parametrize("name", ALL_PAIRS)
def test_float16_is_scored_in_float32(name: str) -> None:
    fn = getattr(util, name)
    half = A.astype(np.float16)
    got = fn(half, half)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, fn(half.astype(np.float32), half.astype(np.float32)), atol=1e-6)


@pytest.mark.parametrize("name", ALL_PAIRS[:1] + ALL_PAIRS[2:] + PAIRWISE[:-1])
def test_sparse_embeddings_score_as_their_dense_form(name: str) -> None:
    fn = getattr(util, name)
    sparse = SparseEmbeddings.from_dense(SPARSE)
    np.testing.assert_allclose(fn(sparse, sparse), fn(SPARSE, SPARSE), atol=1e-5)
    np.testing.assert_allclose(fn(sparse, SPARSE), fn(SPARSE, SPARSE), atol=1e-5)


def test_similarity_function_enum() -> None:
    assert util.SimilarityFunction.possible_values() == ["cosine", "dot", "euclidean", "manhattan"]
    assert util.SimilarityFunction("dot") is util.SimilarityFunction.DOT_PRODUCT
    assert util.SimilarityFunction.to_similarity_fn("cosine") is util.cos_sim
    assert util.SimilarityFunction.to_similarity_pairwise_fn(util.SimilarityFunction.DOT) is util.pairwise_dot_score
    with pytest.raises(InputError, match="maxsim"):
        util.SimilarityFunction.to_similarity_fn("maxsim")


def test_quantize_embeddings_lists() -> None:
    assert util.quantize_embeddings([], "int8") == []
    matrices = [A[:3], A[3:]]
    shared = util.quantize_embeddings(matrices, "uint8")
    np.testing.assert_array_equal(np.concatenate(shared), util.quantize_embeddings(A, "uint8"))


def test_select_max_active_dims_and_truncate() -> None:
    kept = util.select_max_active_dims(A, 3)
    assert kept.shape == A.shape and np.all((kept != 0).sum(1) == 3)
    assert np.all(np.abs(kept).max(1) == np.abs(A).max(1))
    assert util.select_max_active_dims(A, None) is A
    assert util.truncate_embeddings(A, 4).shape == (7, 4) and util.truncate_embeddings(A, 99).shape == A.shape
    with pytest.raises(InputError):
        util.select_max_active_dims(A, 0)


def test_angle_similarity_of_a_vector_with_itself_is_one() -> None:
    np.testing.assert_allclose(util.pairwise_angle_sim(A, A), 1.0, atol=1e-6)
    odd = A[:, :11]
    np.testing.assert_allclose(util.pairwise_angle_sim(odd, odd), 1.0, atol=1e-6)


def test_community_detection_finds_the_clusters() -> None:
    communities = util.community_detection(CLUSTERS, threshold=0.9, min_community_size=5)
    assert [sorted(c) for c in communities] == [list(range(12)), list(range(12, 20))]
    assert util.community_detection(np.zeros((0, 4))) == []


def test_paraphrase_mining_pairs_are_unique_and_sorted() -> None:
    pairs = util.paraphrase_mining_embeddings(CLUSTERS, top_k=3, max_pairs=10)
    assert len(pairs) == 10 and all(i < j for _, i, j in pairs)
    assert [p[0] for p in pairs] == sorted((p[0] for p in pairs), reverse=True)
    assert len({(i, j) for _, i, j in pairs}) == 10


def test_semantic_search_chunks_do_not_change_results() -> None:
    whole = util.semantic_search(A, B, top_k=3)
    chunked = util.semantic_search(A, B, top_k=3, query_chunk_size=2, corpus_chunk_size=2)
    assert [[h["corpus_id"] for h in q] for q in whole] == [[h["corpus_id"] for h in q] for q in chunked]
    sparse = util.semantic_search(SparseEmbeddings.from_dense(SPARSE), SPARSE, top_k=2)
    assert [[h["corpus_id"] for h in q] for q in sparse] == \
        [[h["corpus_id"] for h in q] for q in util.semantic_search(SPARSE, SPARSE, top_k=2)]


# The torch stage: the same call on sentence_transformers.util.

def st_util() -> Any:
    return pytest.importorskip("sentence_transformers").util


@pytest.mark.skipif(not HAS_ST, reason="sentence-transformers is installed in CI's torch stage only")
@pytest.mark.parametrize("name", ALL_PAIRS + PAIRWISE)
def test_similarity_matches_sentence_transformers(name: str) -> None:
    theirs = getattr(st_util(), name)
    ours = getattr(util, name)
    b = A if name.startswith("pairwise") else B
    cases = [(A, b), (A.astype(np.float16), b.astype(np.float16))]
    for x, y in cases + ([] if name == "pairwise_angle_sim" else [(A[0], b[0])]):  # ST's angle needs 2-D
        expected = theirs(x, y).numpy()
        got = ours(x, y)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.skipif(not HAS_ST, reason="sentence-transformers is installed in CI's torch stage only")
def test_helpers_match_sentence_transformers() -> None:
    import torch

    theirs = st_util()
    assert util.community_detection(CLUSTERS, 0.9, 5) == theirs.community_detection(CLUSTERS, 0.9, 5)
    ours_pairs = util.paraphrase_mining_embeddings(CLUSTERS, top_k=3, max_pairs=10)
    their_pairs = theirs.paraphrase_mining_embeddings(torch.from_numpy(CLUSTERS), top_k=3, max_pairs=10)
    assert [(i, j) for _, i, j in ours_pairs] == [(i, j) for _, i, j in their_pairs]
    np.testing.assert_allclose([s for s, _, _ in ours_pairs], [s for s, _, _ in their_pairs], atol=1e-5)
    np.testing.assert_allclose(util.select_max_active_dims(A, 3), theirs.select_max_active_dims(A, 3).numpy())
    assert util.quantize_embeddings([], "int8") == theirs.quantize_embeddings([], "int8")
    for precision in ("int8", "uint8", "binary", "ubinary"):
        np.testing.assert_array_equal(util.quantize_embeddings(A, precision), theirs.quantize_embeddings(A, precision))
    ours_hits, their_hits = util.semantic_search(A, B, top_k=3), theirs.semantic_search(A, B, top_k=3)
    assert [[h["corpus_id"] for h in q] for q in ours_hits] == [[h["corpus_id"] for h in q] for q in their_hits]
    dense = torch.from_numpy(SPARSE).to_sparse()
    np.testing.assert_allclose(util.cos_sim(SparseEmbeddings.from_dense(SPARSE), SPARSE),
                               theirs.cos_sim(dense, dense).numpy(), atol=1e-5)
    assert util.SimilarityFunction.possible_values() == [
        v for v in theirs.SimilarityFunction.possible_values() if "maxsim" not in v]
