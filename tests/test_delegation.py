"""Wrappers call the public method they are built on exactly as sentence-transformers does.

For the same outer call on the same fixture directory, the inner method is replaced by a recorder on the
sentence-transformers model and on the onnx-st model, and the recorded ``(args, kwargs)`` must be equal:
same method, same keywords, same values passed or omitted.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import onnx_st
from tests.conftest import fixture_dir

st = pytest.importorskip("sentence_transformers")
torch = pytest.importorskip("torch")

TEXTS = ["hello world", "A short one.", "accents: café, naïve"]
Call = tuple[tuple[Any, ...], dict[str, Any]]


class Recorder:
    """Stands in for a method: records each call and returns ``result``."""

    def __init__(self, result: Any) -> None:
        self.calls: list[Call] = []
        self.result = result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self.result


def recorded(model: Any, inner: str, outer: Callable[[Any], Any], result: Any = None) -> list[Call]:
    """The calls ``outer(model)`` makes to ``model.<inner>`` (replaced on the instance for the call)."""
    recorder = Recorder(result)
    setattr(model, inner, recorder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outer(model)
    finally:
        delattr(model, inner)
    return recorder.calls


def same_calls(pair: tuple[Any, Any], inner: str, outer: Callable[[Any], Any],
               results: tuple[Any, Any] = (None, None)) -> None:
    theirs, ours = pair
    expected = recorded(theirs, inner, outer, results[0])
    got = recorded(ours, inner, outer, results[1])
    assert expected, f"sentence-transformers did not call {inner}"
    assert got == expected


@pytest.fixture(scope="module")
def dense() -> tuple[Any, onnx_st.SentenceTransformer]:
    path = str(fixture_dir("dense-router"))
    return st.SentenceTransformer(path, device="cpu"), onnx_st.SentenceTransformer(path)


@pytest.fixture(scope="module")
def sparse() -> tuple[Any, onnx_st.SparseEncoder]:
    path = str(fixture_dir("sparse-inference-free"))
    return st.SparseEncoder(path, device="cpu"), onnx_st.SparseEncoder(path)


@pytest.fixture(scope="module")
def multi_vector() -> tuple[Any, onnx_st.MultiVectorEncoder]:
    path = str(fixture_dir("multi-vector-basic"))
    return st.MultiVectorEncoder(path, device="cpu"), onnx_st.MultiVectorEncoder(path)


@pytest.fixture(scope="module")
def cross() -> tuple[Any, onnx_st.CrossEncoder]:
    path = str(fixture_dir("cross-1label"))
    return st.CrossEncoder(path, device="cpu"), onnx_st.CrossEncoder(path)


ENCODE_CALLS: list[Callable[[Any], Any]] = [
    lambda m: m.encode_query(TEXTS),
    lambda m: m.encode_document(TEXTS),
    lambda m: m.encode_query("one text", prompt_name="document"),
    lambda m: m.encode_document(TEXTS, prompt="passage: ", batch_size=2, show_progress_bar=False),
    lambda m: m.encode_query(TEXTS, None, None, 4),
    lambda m: m.encode_document(sentences=TEXTS),
    lambda m: m.encode_query(TEXTS, processing_kwargs={"text": {"max_length": 5}}),
    lambda m: m.encode_document(TEXTS, modality="text"),
]
DENSE_CALLS: list[Callable[[Any], Any]] = [
    lambda m: m.encode_query(TEXTS, normalize_embeddings=True, truncate_dim=4, precision="int8"),
    lambda m: m.encode_document(TEXTS, output_value="token_embeddings", convert_to_numpy=False, chunk_size=2),
]


@pytest.mark.parametrize("outer", ENCODE_CALLS + DENSE_CALLS)
def test_sentence_transformer_wrappers_call_encode(dense: tuple[Any, Any], outer: Callable[[Any], Any]) -> None:
    same_calls(dense, "encode", outer)


def test_sentence_transformer_deprecated_names(dense: tuple[Any, Any], tmp_path: Path) -> None:
    pool = {"input": None, "output": None, "processes": []}
    same_calls(dense, "encode", lambda m: m.encode_multi_process(TEXTS, pool, prompt_name="query", batch_size=3))
    same_calls(dense, "encode", lambda m: m.encode_multi_process(TEXTS, pool, truncate_dim=4, chunk_size=2,
                                                                 normalize_embeddings=True))
    same_calls(dense, "get_embedding_dimension", lambda m: m.get_sentence_embedding_dimension())
    same_calls(dense, "truncate_embeddings", lambda m: m.truncate_sentence_embeddings(4).__enter__(),
               (contextlib.nullcontext(), contextlib.nullcontext()))
    same_calls(dense, "preprocess", lambda m: m.tokenize(TEXTS))
    same_calls(dense, "preprocess", lambda m: m.tokenize(TEXTS, prompt="query: "))
    target = str(tmp_path / "saved")
    same_calls(dense, "save", lambda m: m.save_pretrained(target))
    same_calls(dense, "save", lambda m: m.save_pretrained(target, model_name="m", create_model_card=False))


def test_deprecated_names_warn_with_the_same_category(dense: tuple[Any, Any]) -> None:
    pool = {"input": None, "output": None, "processes": []}
    for model in dense:
        model.encode = Recorder(np.zeros((3, 4)))
        try:
            with pytest.warns(DeprecationWarning, match="encode_multi_process"):
                model.encode_multi_process(TEXTS, pool)
        finally:
            del model.encode
        with pytest.warns(FutureWarning, match="get_sentence_embedding_dimension"):
            model.get_sentence_embedding_dimension()
        with pytest.warns(FutureWarning, match="truncate_sentence_embeddings"), model.truncate_sentence_embeddings(4):
            pass


SPARSE_CALLS: list[Callable[[Any], Any]] = [
    lambda m: m.encode_query(TEXTS, convert_to_sparse_tensor=False, max_active_dims=3),
    lambda m: m.encode_document(TEXTS, convert_to_tensor=False, save_to_cpu=True, chunk_size=2),
]


@pytest.mark.parametrize("outer", ENCODE_CALLS + SPARSE_CALLS)
def test_sparse_encoder_wrappers_call_encode(sparse: tuple[Any, Any], outer: Callable[[Any], Any]) -> None:
    same_calls(sparse, "encode", outer)


def test_sparse_encoder_deprecated_names(sparse: tuple[Any, Any]) -> None:
    same_calls(sparse, "get_embedding_dimension", lambda m: m.get_sentence_embedding_dimension())
    same_calls(sparse, "preprocess", lambda m: m.tokenize(TEXTS, task="query"))


MULTI_VECTOR_CALLS: list[Callable[[Any], Any]] = [
    lambda m: m.encode_query(TEXTS, normalize_embeddings=True, truncate_dim=4, convert_to_numpy=True),
    lambda m: m.encode_document(TEXTS, output_value=None, chunk_size=2),
]


# sentence-transformers' MultiVectorEncoder has no ``sentences=`` alias (onnx-st's keeps it)
@pytest.mark.parametrize("outer", [c for i, c in enumerate(ENCODE_CALLS) if i != 5] + MULTI_VECTOR_CALLS)
def test_multi_vector_encoder_wrappers_call_encode(multi_vector: tuple[Any, Any],
                                                   outer: Callable[[Any], Any]) -> None:
    same_calls(multi_vector, "encode", outer)


@pytest.mark.parametrize("outer", [
    lambda m: m.rank("a query", TEXTS),
    lambda m: m.rank("a query", TEXTS, top_k=2, return_documents=True, batch_size=2, show_progress_bar=False),
    lambda m: m.rank("a query", TEXTS, prompt="q: ", chunk_size=2, device=None),
    lambda m: m.rank("a query", TEXTS, prompt_name=None, apply_softmax=True, convert_to_numpy=False),
    lambda m: m.rank("a query", TEXTS, activation_fct=ACTIVATION),
])
def test_cross_encoder_rank_calls_predict(cross: tuple[Any, Any], outer: Callable[[Any], Any]) -> None:
    scores = [0.25, 0.75, 0.5]
    same_calls(cross, "predict", outer, (torch.tensor(scores), np.array(scores)))


ACTIVATION = torch.nn.Identity()


def test_cross_encoder_tokenize_and_save(cross: tuple[Any, Any], tmp_path: Path) -> None:
    pairs = [("a query", "a document"), ("another", "one")]
    same_calls(cross, "preprocess", lambda m: m.tokenize(pairs))
    same_calls(cross, "save", lambda m: m.save_pretrained(str(tmp_path / "saved"), safe_serialization=False))
