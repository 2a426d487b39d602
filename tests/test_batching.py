"""Batch formation: length order by token count, and batches split into runs under a token budget."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import onnx_st
from onnx_st.errors import InputError
from onnx_st.modules.transformer import Transformer
from onnx_st.options import DEFAULT_MAX_BATCH_TOKENS

from .conftest import fixture_dir

# Few characters but many tokens, or many characters but few tokens: character order and token order disagree.
TEXTS = (["1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6", "a b c d e f g h i j k l m n o p q r s t"]
         + ["internationalization"] * 3 + [" ".join(["word"] * k) for k in range(1, 40)] + ["", "x"])


def _runs(model: onnx_st.SentenceTransformer | onnx_st.CrossEncoder | onnx_st.SparseEncoder) -> list[int]:
    """Record the rows of every ONNX run the model makes from now on."""
    rows: list[int] = []
    for transformer in model._transformers():
        session = transformer.session
        original = session.run

        def run(output: str, feeds: Any, original: Any = original) -> np.ndarray:
            rows.append(len(feeds["input_ids"]))
            return original(output, feeds)

        session.run = run  # type: ignore[method-assign]
    return rows


def test_row_runs_respect_the_budget() -> None:
    model = onnx_st.SentenceTransformer(str(fixture_dir("dense-mean")))
    transformer = model._transformers()[0]
    assert transformer.max_batch_tokens == DEFAULT_MAX_BATCH_TOKENS == model.max_batch_tokens
    transformer.max_batch_tokens = 100
    assert transformer.row_runs(32, 10) == [(0, 10), (10, 20), (20, 30), (30, 32)]
    assert transformer.row_runs(3, 500) == [(0, 1), (1, 2), (2, 3)]  # one row even above the budget
    assert transformer.row_runs(0, 0) == [(0, 0)]
    transformer.max_batch_tokens = None
    assert transformer.row_runs(32, 512) == [(0, 32)]


@pytest.mark.parametrize("name", ["dense-mean", "dense-cls", "dense-max", "dense-lasttoken", "dense-router"])
def test_dense_output_does_not_depend_on_the_budget(name: str) -> None:
    model = onnx_st.SentenceTransformer(str(fixture_dir(name)))
    kwargs = {"task": "query"} if name == "dense-router" else {}
    whole = model.encode(TEXTS, batch_size=16, **kwargs)
    model.max_batch_tokens = 7
    rows = _runs(model)
    split = model.encode(TEXTS, batch_size=16, **kwargs)
    assert max(rows) < 16 and len(rows) > len(TEXTS) // 16 + 1
    np.testing.assert_allclose(split, whole, atol=1e-6)
    tokens = model.encode(TEXTS, batch_size=16, output_value="token_embeddings", **kwargs)
    model.max_batch_tokens = None
    full = model.encode(TEXTS, batch_size=16, output_value="token_embeddings", **kwargs)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(tokens, full))


def test_cross_and_sparse_output_does_not_depend_on_the_budget() -> None:
    pairs = [(t, TEXTS[-3]) for t in TEXTS]
    cross = onnx_st.CrossEncoder(str(fixture_dir("cross-3labels")))
    whole = cross.predict(pairs, batch_size=8)
    cross.max_batch_tokens = 9
    np.testing.assert_allclose(cross.predict(pairs, batch_size=8), whole, atol=1e-6)
    sparse = onnx_st.SparseEncoder(str(fixture_dir("sparse-max-relu")))
    whole = sparse.encode(TEXTS, batch_size=8, convert_to_sparse_tensor=False)
    sparse.max_batch_tokens = 9
    np.testing.assert_allclose(sparse.encode(TEXTS, batch_size=8, convert_to_sparse_tensor=False), whole, atol=1e-6)


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "8"])
def test_bad_budget_is_an_input_error(value: Any) -> None:
    with pytest.raises(InputError, match="max_batch_tokens"):
        onnx_st.SentenceTransformer(str(fixture_dir("dense-mean")), max_batch_tokens=value)


def test_batches_are_formed_by_token_count() -> None:
    model = onnx_st.SentenceTransformer(str(fixture_dir("dense-mean")))
    transformer = model._transformers()[0]
    assert isinstance(transformer, Transformer)
    counts = transformer.token_lengths(TEXTS)
    assert counts == [int(m.sum()) for m in transformer.preprocess(TEXTS)["attention_mask"]]
    assert model.pipeline.lengths(TEXTS, batch_size=4) == counts
    assert model.pipeline.lengths(TEXTS[:4], batch_size=4) == [len(t) for t in TEXTS[:4]]  # one batch: no count
    widths: list[int] = []
    original = transformer.session.run

    def run(output: str, feeds: Any) -> np.ndarray:
        widths.append(int(np.shape(feeds["input_ids"])[1]))
        return original(output, feeds)

    transformer.session.run = run  # type: ignore[method-assign]
    model.max_batch_tokens = None
    model.encode(TEXTS, batch_size=4)
    expected = [max(chunk) for chunk in np.array_split(sorted(counts, reverse=True),
                                                       range(4, len(counts), 4))]
    assert widths == expected  # each batch is padded to the longest of the 4 with the most tokens
    prompt_counts = transformer.token_lengths(TEXTS, prompt="query: ")
    limit = transformer.max_seq_length or 10**9
    assert all(p > c or c == limit for p, c in zip(prompt_counts, counts)) and max(prompt_counts) <= limit
