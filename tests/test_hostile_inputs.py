"""Malformed arguments to encode, similarity and quantization: an InputError naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import onnx_st
from onnx_st.errors import InputError
from onnx_st.functional import PAIRWISE, SIMILARITY
from onnx_st.quantization import quantize_embeddings

from .conftest import fixture_dir

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)


@pytest.fixture(scope="module")
def model() -> onnx_st.SentenceTransformer:
    return onnx_st.SentenceTransformer(str(fixture_dir("dense-mean")))


@pytest.fixture(scope="module")
def cross() -> onnx_st.CrossEncoder:
    return onnx_st.CrossEncoder(str(fixture_dir("cross-1label")))


@settings(max_examples=20, deadline=None)
@given(before=st.text(max_size=5), surrogate=SURROGATES, after=st.text(max_size=5))
def test_text_with_a_lone_surrogate(model: onnx_st.SentenceTransformer, before: str, surrogate: str,
                                    after: str) -> None:
    with pytest.raises(InputError, match="#1 is not valid Unicode"):
        model.encode(["fine", before + surrogate + after])
    with pytest.raises(InputError, match="prompt"):
        model.encode(["fine"], prompt=surrogate)


def test_pair_with_a_lone_surrogate(cross: onnx_st.CrossEncoder) -> None:
    with pytest.raises(InputError):
        cross.predict([("query", "doc \ud800")])


@pytest.mark.parametrize("prompt", [123, b"bytes", ["list"], 1.5])
def test_prompt_of_the_wrong_type(model: onnx_st.SentenceTransformer, prompt: object) -> None:
    with pytest.raises(InputError, match="prompt must be a str"):
        model.encode(["text"], prompt=prompt)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="prompt_name must be a str"):
        model.encode(["text"], prompt_name=prompt)  # type: ignore[arg-type]


SHAPES = st.tuples(st.integers(1, 3), st.integers(1, 5))


@settings(max_examples=30, deadline=None)
@given(a=SHAPES, b=SHAPES, name=st.sampled_from(sorted(SIMILARITY)))
def test_similarity_of_mismatched_shapes(a: tuple[int, int], b: tuple[int, int], name: str) -> None:
    """Any two shapes: equal widths give a (len(a), len(b)) matrix; otherwise an InputError naming both."""
    x, y = np.ones(a, np.float32), np.ones(b, np.float32)
    if a[1] == b[1]:
        assert SIMILARITY[name](x, y).shape == (a[0], b[0])
    else:
        with pytest.raises(InputError, match=rf"shapes \({a[0]}, {a[1]}\) and \({b[0]}, {b[1]}\)"):
            SIMILARITY[name](x, y)
    if a == b:
        assert PAIRWISE[name](x, y).shape == (a[0],)
    else:
        with pytest.raises(InputError, match="same shape"):
            PAIRWISE[name](x, y)


@pytest.mark.parametrize("bad", [np.ones((2, 2, 2)), np.array([["a", "b"]]), [[1.0, 2.0], [3.0]]])
def test_similarity_of_non_matrices(bad: object) -> None:
    with pytest.raises(InputError):
        SIMILARITY["cosine"](bad, np.ones((1, 2)))  # type: ignore[arg-type]


def test_model_similarity_of_mismatched_dimensions(model: onnx_st.SentenceTransformer) -> None:
    emb = model.encode(["one", "two"])
    with pytest.raises(InputError, match="same dimension"):
        model.similarity(emb, emb[:, :5])


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 6)), precision=st.sampled_from(["int8", "uint8"]))
def test_quantization_ranges_of_the_wrong_shape(shape: tuple[int, int], precision: str) -> None:
    embeddings = np.linspace(-1, 1, 2 * 4, dtype=np.float32).reshape(2, 4)
    if shape == (2, 4):
        assert quantize_embeddings(embeddings, precision, ranges=np.ones(shape)).shape == (2, 4)  # type: ignore
        return
    with pytest.raises(InputError, match=r"ranges must be a \(2, 4\)"):
        quantize_embeddings(embeddings, precision, ranges=np.ones(shape))  # type: ignore[arg-type]


def test_quantization_calibration_of_the_wrong_width() -> None:
    with pytest.raises(InputError, match="calibration_embeddings"):
        quantize_embeddings(np.ones((2, 4), np.float32), "int8", calibration_embeddings=np.ones((3, 5)))
