"""sentence-transformers' calling conventions without torch: keywords, inputs and their errors."""

from __future__ import annotations

import numpy as np
import pytest

import onnx_st
from onnx_st.errors import InputError
from tests.conftest import fixture_dir


@pytest.fixture(scope="module")
def model() -> onnx_st.SentenceTransformer:
    return onnx_st.SentenceTransformer(fixture_dir("dense-mean"))


def test_constructor_keywords_torch_only_and_unknown() -> None:
    path = fixture_dir("dense-mean")
    onnx_st.SentenceTransformer(path, trust_remote_code=True, processor_kwargs={"x": 1}, config_kwargs={},
                                model_card_data=None, tokenizer_kwargs={}, use_auth_token=None,
                                model_kwargs={"torch_dtype": "auto", "attn_implementation": "sdpa"})
    with pytest.raises(InputError, match=r"devcie.*accepted: .*'device'"):
        onnx_st.SentenceTransformer(path, devcie="cuda")
    with pytest.raises(InputError, match="use_auth_token"):
        onnx_st.SentenceTransformer(path, token="a", use_auth_token="b")
    with pytest.raises(InputError, match="modules"):
        onnx_st.SentenceTransformer(modules=[])
    with pytest.raises(InputError, match="max_activ_dims"):
        onnx_st.SparseEncoder(fixture_dir("sparse-max-relu"), max_activ_dims=3)
    cross = onnx_st.CrossEncoder(model_name=str(fixture_dir("cross-1label")), cache_dir=None, classifier_dropout=0.1,
                                 default_activation_function="torch.nn.modules.linear.Identity")
    assert cross.activation_fn_name.endswith("Identity")


def test_what_counts_as_one_input(model: onnx_st.SentenceTransformer) -> None:
    assert model.is_singular_input("text")
    assert not model.is_singular_input(["text"])
    assert not model.is_singular_input(("a", "b"))  # a tuple is a batch of two texts
    assert not model.is_singular_input(np.array(["a", "b"]))
    assert model.encode(("a", "b")).shape == (2, model.get_embedding_dimension())
    assert model.encode([("a", "b")]).shape == (1, model.get_embedding_dimension())  # one pair
    with pytest.raises(InputError, match="inputs"):
        model.encode(None)
    with pytest.raises(InputError, match="pair"):
        model.encode([("a", "b", "c")])


@pytest.mark.parametrize("kwargs, match", [
    ({"processing_kwargs": {"text": {"max_length": 0}}}, "max_length"),
    ({"processing_kwargs": {"text": {"truncation": False}}}, "truncation"),
    ({"processing_kwargs": "max_length=3"}, "processing_kwargs"),
    ({"modality": "text"}, "modality"),
    ({"pool": {"input": None}}, "pool"),
    ({"device": ["cpu"], "chunk_size": 0}, "chunk_size"),
    ({"truncate_dim": True}, "truncate_dim"),
])
def test_bad_call_arguments(model: onnx_st.SentenceTransformer, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        model.encode(["a", "b"], **kwargs)


def test_processing_kwargs_truncate_this_call_only(model: onnx_st.SentenceTransformer) -> None:
    text = "one two three four five six seven eight nine ten"
    before = model.max_seq_length
    short = model.encode(text, processing_kwargs={"text": {"max_length": 4}, "image": {}})
    assert model.max_seq_length == before
    model.max_seq_length = 4
    try:
        np.testing.assert_array_equal(short, model.encode(text))
    finally:
        model.max_seq_length = before
    with pytest.raises(InputError, match="max_seq_length"):
        model.max_seq_length = 0
