"""The same inference calls on sentence-transformers and on onnx-st, on the same fixture directories."""

from __future__ import annotations

import inspect
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import onnx_st
from onnx_st.errors import InputError
from tests.conftest import fixture_dir, fixture_inputs

st = pytest.importorskip("sentence_transformers")

LONG = "the quick brown fox jumps over the lazy dog " * 20
TEXTS = ["hello world", "A short one.", LONG, "accents: café, naïve"]


@pytest.fixture(scope="module")
def dense() -> tuple[Any, onnx_st.SentenceTransformer]:
    path = str(fixture_dir("dense-mean"))
    return st.SentenceTransformer(path, device="cpu"), onnx_st.SentenceTransformer(path)


@pytest.fixture(scope="module")
def cross() -> tuple[Any, onnx_st.CrossEncoder]:
    path = str(fixture_dir("cross-1label"))
    return st.CrossEncoder(path, device="cpu"), onnx_st.CrossEncoder(path)


def close(a: Any, b: Any) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), atol=1e-5)


def test_max_seq_length_setter_truncates_as_sentence_transformers(dense: tuple[Any, Any]) -> None:
    theirs, ours = dense
    before = ours.max_seq_length
    assert ours.get_max_seq_length() == theirs.get_max_seq_length() == before
    try:
        theirs.max_seq_length = ours.max_seq_length = 8
        assert ours.max_seq_length == theirs.max_seq_length == 8
        close(ours.encode(TEXTS), theirs.encode(TEXTS))
    finally:
        theirs.max_seq_length = ours.max_seq_length = before
    close(ours.encode(TEXTS), theirs.encode(TEXTS))


@pytest.mark.parametrize("kwargs", [
    {"inputs": TEXTS},
    {"inputs": TEXTS, "precision": None},
    {"inputs": TEXTS, "processing_kwargs": {"text": {"max_length": 6}}},
    {"inputs": TEXTS, "truncate_dim": 10_000},
    {"inputs": TEXTS, "truncate_dim": 5, "normalize_embeddings": True},
    {"inputs": [("a question", "its passage"), "a plain text"]},
    {"inputs": tuple(TEXTS)},
    {"inputs": np.array(TEXTS)},
    {"inputs": "one text", "chunk_size": 3},
    {"inputs": TEXTS, "precision": "ubinary"},
])
def test_encode_arguments(dense: tuple[Any, Any], kwargs: dict[str, Any]) -> None:
    theirs, ours = dense
    expected, got = theirs.encode(**kwargs), ours.encode(**kwargs)
    assert isinstance(got, np.ndarray) and got.shape == expected.shape and got.dtype == expected.dtype
    close(got, expected)


def test_encode_datasets_column(dense: tuple[Any, Any]) -> None:
    import datasets  # in the test extra: a missing package must fail, not skip

    column = datasets.Dataset.from_dict({"text": TEXTS})["text"]
    theirs, ours = dense
    close(ours.encode(column), theirs.encode(column))


def test_output_value_none_is_truncated(dense: tuple[Any, Any]) -> None:
    theirs, ours = dense
    expected = theirs.encode(TEXTS[:2], output_value=None, truncate_dim=4)
    got = ours.encode(TEXTS[:2], output_value=None, truncate_dim=4)
    for mine, ref in zip(got, expected):
        assert mine["sentence_embedding"].shape == tuple(ref["sentence_embedding"].shape) == (4,)
        close(mine["sentence_embedding"], ref["sentence_embedding"].numpy())
        close(mine["token_embeddings"], ref["token_embeddings"].numpy())


def test_convert_to_numpy_false_gives_a_list(dense: tuple[Any, Any]) -> None:
    theirs, ours = dense
    expected, got = theirs.encode(TEXTS, convert_to_numpy=False), ours.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(got, list) and len(got) == len(expected)
    close(np.stack(got), np.stack([t.numpy() for t in expected]))


def test_unknown_encode_keyword_is_an_error_on_both(dense: tuple[Any, Any]) -> None:
    theirs, ours = dense
    with pytest.raises(ValueError):
        theirs.encode(TEXTS, modality="text")  # a model without a Router takes no modality
    with pytest.raises(InputError, match="modality"):
        ours.encode(TEXTS, modality="text")
    assert ours.get_model_kwargs() == theirs.get_model_kwargs() == []


def test_preprocess_matches(dense: tuple[Any, Any]) -> None:
    theirs, ours = dense
    expected, got = theirs.preprocess(TEXTS, prompt="query: "), ours.preprocess(TEXTS, prompt="query: ")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(got[key], expected[key].numpy())
    assert ours.preprocess([]) == theirs.preprocess([]) == {}


def test_save_accepts_sentence_transformers_arguments(dense: tuple[Any, Any], tmp_path: Path) -> None:
    theirs, ours = dense
    assert ours.save(None) is None and theirs.save(None) is None
    ours.save(str(tmp_path / "saved"), model_name="m", create_model_card=False, train_datasets=[],
              safe_serialization=True)
    close(onnx_st.SentenceTransformer(tmp_path / "saved").encode(TEXTS), theirs.encode(TEXTS))


def test_euclidean_self_similarity_is_zero(dense: tuple[Any, Any]) -> None:
    theirs, ours = dense
    for model in dense:
        model.similarity_fn_name = "euclidean"
    try:
        emb = ours.encode(TEXTS, normalize_embeddings=True)
        expected = theirs.similarity(emb, emb).numpy()
        got = ours.similarity(emb, emb)
        close(got, expected)
        assert np.all(np.diagonal(got) == 0)
    finally:
        for model in dense:
            model.similarity_fn_name = "cosine"


def test_constructor_keywords(dense: tuple[Any, Any]) -> None:
    """Every keyword sentence-transformers' constructors take is accepted; a misspelt one is an InputError."""
    classes = [(st.SentenceTransformer, onnx_st.SentenceTransformer, "dense-mean"),
               (st.CrossEncoder, onnx_st.CrossEncoder, "cross-1label"),
               (st.SparseEncoder, onnx_st.SparseEncoder, "sparse-max-relu")]
    for theirs, ours, name in classes:
        params = inspect.signature(inspect.unwrap(theirs.__init__)).parameters
        for key, param in params.items():
            if key in ("self", "model_name_or_path") or param.kind is param.VAR_KEYWORD:
                continue
            value = "onnx" if key == "backend" else param.default
            ours(str(fixture_dir(name)), **{key: value})
            assert key in ours.accepted_init_kwargs()
        with pytest.raises(InputError, match="devcie"):
            ours(str(fixture_dir(name)), devcie="cuda")
        with pytest.raises(TypeError):
            theirs(str(fixture_dir(name)), devcie="cuda")


def test_static_embedding_max_seq_length() -> None:
    path = str(fixture_dir("dense-static"))
    assert onnx_st.SentenceTransformer(path).max_seq_length == st.SentenceTransformer(path).max_seq_length == math.inf


def test_static_embedding_has_no_token_embeddings() -> None:
    """sentence-transformers fails with a bare KeyError; onnx-st says why, from its own error tree."""
    path = str(fixture_dir("dense-static"))
    with pytest.raises(KeyError):
        st.SentenceTransformer(path).encode(["a text"], output_value="token_embeddings")
    with pytest.raises(InputError, match="StaticEmbedding"):
        onnx_st.SentenceTransformer(path).encode(["a text"], output_value="token_embeddings")


def test_cross_encoder_activation_arguments(cross: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    import torch

    theirs, ours = cross
    pairs = [tuple(p) for p in fixture_inputs("cross-1label")["pairs"]]
    with caplog.at_level(logging.WARNING, logger="onnx_st"):
        got = ours.predict(pairs, activation_fct=torch.nn.Sigmoid(), activation_fn=torch.nn.Identity())
    assert "activation_fct" in caplog.text
    close(got, theirs.predict(pairs, activation_fct=torch.nn.Sigmoid(), activation_fn=torch.nn.Identity()))
    close(ours.predict(pairs, processing_kwargs={"text": {"max_length": 8}}),
          theirs.predict(pairs, processing_kwargs={"text": {"max_length": 8}}))
    assert type(ours.default_activation_function(np.zeros(1))) is np.ndarray
    close(ours.get_default_activation_fn()(np.array([0.5])), theirs.get_default_activation_fn()(torch.tensor([0.5])))


def test_cross_encoder_datasets_column(cross: tuple[Any, Any]) -> None:
    import datasets  # in the test extra: a missing package must fail, not skip

    theirs, ours = cross
    pairs = fixture_inputs("cross-1label")["pairs"]
    column = datasets.Dataset.from_dict({"pair": pairs})["pair"]
    close(ours.predict(column), theirs.predict(column))


def test_sparse_splade_pooling_chunk_size() -> None:
    path = str(fixture_dir("sparse-max-relu"))
    theirs, ours = st.SparseEncoder(path, device="cpu"), onnx_st.SparseEncoder(path)
    assert ours.splade_pooling_chunk_size == theirs.splade_pooling_chunk_size
    theirs.splade_pooling_chunk_size = ours.splade_pooling_chunk_size = 4
    assert ours.splade_pooling_chunk_size == theirs.splade_pooling_chunk_size == 4
    close(ours.encode(TEXTS, convert_to_sparse_tensor=False),
          theirs.encode(TEXTS, convert_to_sparse_tensor=False).numpy())
    theirs.max_seq_length = ours.max_seq_length = 6
    close(ours.encode(TEXTS, convert_to_sparse_tensor=False),
          theirs.encode(TEXTS, convert_to_sparse_tensor=False).numpy())


def test_pooling_include_prompt_and_deprecated_names(dense: tuple[Any, Any]) -> None:
    theirs, ours = dense
    try:
        theirs.set_pooling_include_prompt(False)
        ours.set_pooling_include_prompt(False)
        close(ours.encode(TEXTS, prompt="query: "), theirs.encode(TEXTS, prompt="query: "))
    finally:
        theirs.set_pooling_include_prompt(True)
        ours.set_pooling_include_prompt(True)
    with ours.truncate_sentence_embeddings(4), theirs.truncate_sentence_embeddings(4):
        close(ours.encode(TEXTS), theirs.encode(TEXTS))


METHODS = {
    "SentenceTransformer": ["encode", "similarity", "similarity_pairwise", "save", "save_pretrained", "preprocess",
                            "start_multi_process_pool", "encode_multi_process", "get_embedding_dimension",
                            "truncate_embeddings", "set_pooling_include_prompt", "get_model_kwargs"],
    "CrossEncoder": ["predict", "rank", "save", "preprocess", "get_default_activation_fn"],
    "SparseEncoder": ["encode", "similarity", "similarity_pairwise", "decode", "intersection", "sparsity",
                      "get_embedding_dimension", "set_pooling_include_prompt"],
}


@pytest.mark.parametrize("cls, method", [(c, m) for c, methods in METHODS.items() for m in methods])
def test_positional_parameters_in_the_same_order(cls: str, method: str) -> None:
    """Positional calls written for sentence-transformers bind the same arguments."""
    def positional(fn: Any) -> list[str]:
        return [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"]

    theirs, ours = positional(getattr(getattr(st, cls), method)), positional(getattr(getattr(onnx_st, cls), method))
    assert ours[:len(theirs)] == theirs


def test_encode_query_positional_arguments(dense: tuple[Any, Any]) -> None:
    theirs, ours = dense
    close(ours.encode_query(TEXTS, None, None, 2, False, "sentence_embedding", "float32", True, False, None, True, 6),
          theirs.encode_query(TEXTS, None, None, 2, False, "sentence_embedding", "float32", True, False, None, True, 6))


HTP_SETTINGS = [{"pool_factor": 2.0}, {"pool_factor": 1.5, "num_protected_tokens": 0}, {"max_tokens": 10},
                {"max_tokens": 4, "num_protected_tokens": 2}, {"distance_threshold": 0.05},
                {"distance_threshold": 0.0, "normalize_embeddings": False}]


@pytest.mark.parametrize("settings", HTP_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_token_pooling_config_saved_by_sentence_transformers(settings: dict[str, Any], tmp_path: Path) -> None:
    """A HierarchicalTokenPooling config as sentence-transformers saves it (``max_tokens`` and
    ``distance_threshold`` always written) pools as sentence-transformers pools, in the pipeline and per call."""
    import shutil

    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling as TheirPooling

    from onnx_st.modules.token_pooling import HierarchicalTokenPooling as OurPooling

    path = tmp_path / "model"
    shutil.copytree(fixture_dir("multi-vector-pooling"), path)
    shutil.rmtree(path / "4_HierarchicalTokenPooling")
    TheirPooling(**settings).save(str(path / "4_HierarchicalTokenPooling"))
    saved = (path / "4_HierarchicalTokenPooling" / "config.json").read_text()
    assert '"max_tokens"' in saved and '"distance_threshold"' in saved
    theirs, ours = st.MultiVectorEncoder(str(path), device="cpu"), onnx_st.MultiVectorEncoder(str(path))
    texts = fixture_inputs("multi-vector-pooling")
    for expected, got in [(theirs.encode_document(texts, batch_size=5), ours.encode_document(texts, batch_size=5)),
                          (theirs.encode_query(texts), ours.encode_query(texts))]:
        assert [tuple(e.shape) for e in expected] == [g.shape for g in got]
        for e, g in zip(expected, got):
            close(g, e.numpy())
    plain = onnx_st.MultiVectorEncoder(str(fixture_dir("multi-vector-basic")))
    reference = st.MultiVectorEncoder(str(fixture_dir("multi-vector-basic")), device="cpu")
    expected = reference.encode_document(texts, token_pooling=TheirPooling(**settings))
    got = plain.encode_document(texts, token_pooling=OurPooling(**settings))
    assert [tuple(e.shape) for e in expected] == [g.shape for g in got]
    for e, g in zip(expected, got):
        close(g, e.numpy())


def test_token_pooling_calibrated_threshold_and_errors() -> None:
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling as TheirPooling

    from onnx_st.errors import ConfigError
    from onnx_st.modules.token_pooling import HierarchicalTokenPooling as OurPooling

    documents = st.MultiVectorEncoder(str(fixture_dir("multi-vector-basic")), device="cpu").encode_document(
        fixture_inputs("multi-vector-basic"))
    arrays = [d.numpy() for d in documents]
    for target, protected in [(4.0, 1), (2.5, 0), (1000.0, 1)]:
        expected = TheirPooling.calibrate_distance_threshold(documents, target_tokens=target,
                                                             num_protected_tokens=protected)
        got = OurPooling.calibrate_distance_threshold(arrays, target_tokens=target, num_protected_tokens=protected)
        assert (got is None) == (expected is None)
        if expected is not None:
            assert got == pytest.approx(expected, abs=1e-6)
    for bad in [{"target_tokens": 0.0}, {"target_tokens": 0.5}]:
        with pytest.raises(ValueError) as their_error:
            TheirPooling.calibrate_distance_threshold(documents, **bad)
        with pytest.raises(InputError) as our_error:
            OurPooling.calibrate_distance_threshold(arrays, **bad)
        assert str(our_error.value) == str(their_error.value)
    for bad_settings in [{"pool_factor": 2.0, "max_tokens": 8}, {"max_tokens": 1}, {"distance_threshold": -1.0},
                         {"distance_threshold": 0.5, "max_tokens": 8}, {"pool_factor": float("inf")},
                         {"num_protected_tokens": -1}]:
        with pytest.raises(ValueError) as their_error:
            TheirPooling(**bad_settings)
        with pytest.raises(ConfigError) as our_error:
            OurPooling(**bad_settings)
        assert str(our_error.value) == str(their_error.value)
    with pytest.raises(ConfigError, match="torch backend"):
        OurPooling(2.0, use_kernels=True)
    assert OurPooling(2.0, use_kernels=False, kernel_config=None).pool_factor == 2.0


def test_projected_hidden_size_is_the_embedding_dimension(tmp_path: Path) -> None:
    """An OPT-style config whose output is projected to ``word_embed_proj_dim`` (not ``hidden_size``) loads
    with that dimension and encodes as sentence-transformers does."""
    import torch
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import OPTConfig, OPTModel

    from exporter import export_model
    from tools._tiny import MAX_SEQ_LENGTH, hf_tokenizer

    config = OPTConfig(vocab_size=600, hidden_size=32, word_embed_proj_dim=16, num_hidden_layers=2, ffn_dim=64,
                       num_attention_heads=2, max_position_embeddings=128, pad_token_id=0, bos_token_id=2,
                       eos_token_id=3)
    torch.manual_seed(0)
    OPTModel(config).save_pretrained(tmp_path / "hf")
    hf_tokenizer().save_pretrained(tmp_path / "hf")
    transformer = Transformer(str(tmp_path / "hf"), max_seq_length=MAX_SEQ_LENGTH)
    assert transformer.get_embedding_dimension() == 16
    st.SentenceTransformer(modules=[transformer, Pooling(16, "mean")], device="cpu").save(str(tmp_path / "st"))
    export_model(str(tmp_path / "st"), tmp_path / "onnx", kind="dense", model_card=False)
    theirs, ours = st.SentenceTransformer(str(tmp_path / "onnx"), device="cpu"), onnx_st.SentenceTransformer(
        str(tmp_path / "onnx"))
    assert ours.get_embedding_dimension() == theirs.get_embedding_dimension() == 16
    close(ours.encode(TEXTS), theirs.encode(TEXTS))


def test_token_embeddings_are_the_attended_rows_with_left_padding(tmp_path: Path) -> None:
    """6.3 selects token rows with the attention mask: left pad rows are dropped (6.2 kept them)."""
    import json
    import shutil

    path = tmp_path / "left"
    shutil.copytree(fixture_dir("dense-mean"), path)
    config = json.loads((path / "tokenizer_config.json").read_text())
    (path / "tokenizer_config.json").write_text(json.dumps({**config, "padding_side": "left"}))
    theirs, ours = st.SentenceTransformer(str(path), device="cpu"), onnx_st.SentenceTransformer(str(path))
    expected, got = theirs.encode(TEXTS, output_value="token_embeddings"), ours.encode(TEXTS,
                                                                                      output_value="token_embeddings")
    assert [g.shape for g in got] == [tuple(e.shape) for e in expected]
    for e, g in zip(expected, got):
        close(g, e.numpy())


@pytest.mark.parametrize("kwargs", [{"use_kernels": True}, {"kernel_config": object()}])
def test_kernels_need_the_torch_backend(kwargs: dict[str, Any]) -> None:
    path = str(fixture_dir("dense-mean"))
    with pytest.raises(ValueError) as their_error:
        st.SentenceTransformer(path, backend="onnx", **kwargs)
    with pytest.raises(InputError) as our_error:
        onnx_st.SentenceTransformer(path, **kwargs)
    assert str(our_error.value) == str(their_error.value)


def test_multi_vector_truncate_dim_and_default_token_pooling(tmp_path: Path) -> None:
    """6.3: ``truncate_dim`` (constructor, saved, per call) cuts each token vector after pooling and
    re-normalizes it; a constructor ``token_pooling`` pools every call."""
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling as TheirPooling

    from onnx_st.modules.token_pooling import HierarchicalTokenPooling as OurPooling

    path, texts = str(fixture_dir("multi-vector-basic")), fixture_inputs("multi-vector-basic")
    theirs = st.MultiVectorEncoder(path, device="cpu", truncate_dim=8, token_pooling=TheirPooling(2.0))
    ours = onnx_st.MultiVectorEncoder(path, truncate_dim=8, token_pooling=OurPooling(2.0))
    assert ours.get_embedding_dimension() == theirs.get_embedding_dimension() == 8
    for call in [lambda m: m.encode_document(texts), lambda m: m.encode_query(texts),
                 lambda m: m.encode_document(texts, truncate_dim=4)]:
        expected, got = call(theirs), call(ours)
        assert [g.shape for g in got] == [tuple(e.shape) for e in expected]
        for e, g in zip(expected, got):
            close(g, e.numpy())
    ours.save_pretrained(tmp_path / "saved")
    assert st.MultiVectorEncoder(str(tmp_path / "saved"), device="cpu").truncate_dim == 8
    assert onnx_st.MultiVectorEncoder(str(tmp_path / "saved")).get_embedding_dimension() == 8
