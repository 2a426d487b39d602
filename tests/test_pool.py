"""The multi-process pool gives what one process gives, for each model kind."""

from __future__ import annotations

import numpy as np
import pytest

import onnx_st
from onnx_st.errors import InputError, OnnxSTError
from tests.conftest import fixture_dir, fixture_inputs


def test_dense_and_cross_pools_equal_one_process() -> None:
    model = onnx_st.SentenceTransformer(fixture_dir("dense-mean"))
    model.max_seq_length = 16  # the workers truncate and pool where the parent does
    model.set_pooling_include_prompt(False)
    texts = fixture_inputs("dense-mean") * 3
    pool = model.start_multi_process_pool(["cpu", "cpu"])
    try:
        for kwargs in ({}, {"normalize_embeddings": True, "truncate_dim": 8}, {"precision": "int8"},
                       {"prompt": "query: ", "chunk_size": 5}):
            np.testing.assert_array_equal(model.encode(texts, pool=pool, **kwargs), model.encode(texts, **kwargs))
        tokens = model.encode(texts[:4], pool=pool, output_value="token_embeddings", chunk_size=1)
        for got, expected in zip(tokens, model.encode(texts[:4], output_value="token_embeddings")):
            np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(model.encode_multi_process(texts, pool, prompt="q: "),
                                      model.encode(texts, prompt="q: "))
        assert model.encode([], pool=pool).shape == (0, model.get_embedding_dimension())
        with pytest.raises(InputError, match="chunk_size"):
            model.encode(texts, pool=pool, chunk_size=0)
    finally:
        model.stop_multi_process_pool(pool)

    cross = onnx_st.CrossEncoder(fixture_dir("cross-1label"))
    pairs = [tuple(p) for p in fixture_inputs("cross-1label")["pairs"]]
    np.testing.assert_array_equal(cross.predict(pairs, device=["cpu", "cpu"], chunk_size=4), cross.predict(pairs))


def test_sparse_pool_equals_one_process() -> None:
    model = onnx_st.SparseEncoder(fixture_dir("sparse-max-relu"))
    texts = fixture_inputs("sparse-max-relu")
    got = model.encode(texts, device=["cpu"], chunk_size=5, convert_to_sparse_tensor=False)
    np.testing.assert_array_equal(got, model.encode(texts, convert_to_sparse_tensor=False))


def test_worker_failures_reach_the_caller() -> None:
    model = onnx_st.SentenceTransformer(fixture_dir("dense-mean"))
    pool = model.start_multi_process_pool(["cpu"])
    try:
        with pytest.raises(InputError, match="batch_size"):  # raised in the worker, re-raised here
            model.encode(["x"], pool=pool, batch_size=0)
        pool["processes"][0].kill()
        pool["processes"][0].join()
        with pytest.raises(OnnxSTError, match="died"):
            model.encode(["x"], pool=pool)
    finally:
        model.stop_multi_process_pool(pool)


@pytest.mark.parametrize(("items", "workers", "batch", "expected"), [
    (1000, 2, 32, 64),  # 50 per chunk, rounded up to whole batches
    (10, 4, 32, 32),  # never below one batch
    (10**6, 2, 32, 5024),  # about 5,000 items at most, in whole batches
    (100, 2, 0, 5),  # a bad batch size is the caller's error to raise; chunking still works
])
def test_chunks_are_whole_batches(items: int, workers: int, batch: int, expected: int) -> None:
    from onnx_st.base.pool import _chunk_size

    assert _chunk_size(items, workers, batch) == expected
