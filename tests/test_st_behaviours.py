"""Behaviours of sentence-transformers that onnx-st follows, each checked against sentence-transformers itself
on the same directory."""

from __future__ import annotations

import ast
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import onnx_st
from onnx_st.errors import ConfigError, InputError
from onnx_st.modules import Dense, Normalize, Pooling
from tests.conftest import fixture_dir

st = pytest.importorskip("sentence_transformers")
torch = pytest.importorskip("torch")

TEXTS = ["hello world", "A short one.", "the quick brown fox jumps over the lazy dog " * 8]


def close(a: Any, b: Any) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), atol=1e-5)


def copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(fixture_dir(name), target)
    return target


def edit(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**data, **changes}))


def test_router_sub_module_in_the_router_folder_loads(tmp_path: Path) -> None:
    """A Router config naming its sub-module folder ``""`` (the Router's own folder) loads; escaping ids do not."""
    path = copy(tmp_path, "dense-router")
    for item in (path / "document_0_Transformer").iterdir():
        shutil.move(str(item), str(path / item.name))
    (path / "document_0_Transformer").rmdir()
    config = json.loads((path / "router_config.json").read_text())
    config["types"] = {("" if k == "document_0_Transformer" else k): v for k, v in config["types"].items()}
    config["structure"]["document"] = ["" if m == "document_0_Transformer" else m
                                       for m in config["structure"]["document"]]
    (path / "router_config.json").write_text(json.dumps(config))
    theirs, ours = st.SentenceTransformer(str(path), device="cpu"), onnx_st.SentenceTransformer(str(path))
    for method in ("encode_query", "encode_document", "encode"):
        close(getattr(ours, method)(TEXTS), getattr(theirs, method)(TEXTS))

    config["types"]["../escape"] = config["types"].pop("")
    config["structure"]["document"][0] = "../escape"
    (path / "router_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="relative path without '..'"):
        st.SentenceTransformer(str(path), device="cpu")
    with pytest.raises(ConfigError, match="relative path without '..'"):
        onnx_st.SentenceTransformer(str(path))


def test_modules_load_on_their_own() -> None:
    """``Dense.load(path)`` (and the other module loaders) need no model around them, as in sentence-transformers."""
    from sentence_transformers.base.modules import Dense as TheirDense
    from sentence_transformers.base.modules import Normalize as TheirNormalize
    from sentence_transformers.sentence_transformer.modules import Pooling as TheirPooling

    root = fixture_dir("dense-dense-layer")
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(2, 5, 32)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    theirs: dict[str, Any] = {"token_embeddings": torch.tensor(tokens), "attention_mask": torch.tensor(mask)}
    ours: dict[str, Any] = {"token_embeddings": tokens, "attention_mask": mask}
    for their_cls, our_cls, folder in [(TheirPooling, Pooling, "1_Pooling"), (TheirDense, Dense, "2_Dense"),
                                       (TheirNormalize, Normalize, "3_Normalize")]:
        their_module, our_module = their_cls.load(str(root / folder)), our_cls.load(root / folder)
        assert our_module.module_output_name == getattr(their_module, "module_output_name", "sentence_embedding")
        theirs, ours = their_module(theirs), our_module.forward(ours)
        close(ours["sentence_embedding"], theirs["sentence_embedding"].detach().numpy())
    assert Dense.load(str(root / "2_Dense")).module_input_name == TheirDense.load(
        str(root / "2_Dense")).module_input_name == "sentence_embedding"


def test_custom_feature_names_survive_save_and_reload(tmp_path: Path) -> None:
    from sentence_transformers.base.modules import Dense as TheirDense

    saved_by_them = tmp_path / "theirs"
    saved_by_them.mkdir()
    TheirDense(32, 16, module_input_name="token_embeddings", module_output_name="projected").save(str(saved_by_them))
    ours = Dense.load(saved_by_them)
    assert (ours.module_input_name, ours.module_output_name) == ("token_embeddings", "projected")
    ours.save(tmp_path / "ours")
    for reloaded in (Dense.load(tmp_path / "ours"), TheirDense.load(str(tmp_path / "ours"))):
        assert (reloaded.module_input_name, reloaded.module_output_name) == ("token_embeddings", "projected")
    x = np.random.default_rng(1).normal(size=(2, 3, 32)).astype(np.float32)
    expected = TheirDense.load(str(tmp_path / "ours"))({"token_embeddings": torch.tensor(x)})["projected"]
    close(Dense.load(tmp_path / "ours").forward({"token_embeddings": x})["projected"], expected.detach().numpy())


def test_unknown_config_keys_as_sentence_transformers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Dense drops an unknown key with a warning, Normalize drops it; Pooling, SpladePooling, the Transformer
    and the Router refuse it (a TypeError there, a ConfigError here)."""
    path = copy(tmp_path, "dense-dense-layer")
    edit(path / "2_Dense" / "config.json", foo_bar=1)
    edit(path / "3_Normalize" / "config.json", foo_bar=1)
    with caplog.at_level(logging.WARNING):
        expected = st.SentenceTransformer(str(path), device="cpu").encode(TEXTS)
        close(onnx_st.SentenceTransformer(str(path)).encode(TEXTS), expected)
    warnings = [r.getMessage() for r in caplog.records if "Ignoring unrecognized Dense config key(s)" in r.getMessage()]
    assert len(warnings) == 2 and all("['foo_bar']" in w for w in warnings)

    for name, file in [("dense-mean", "1_Pooling/config.json"), ("dense-mean", "sentence_bert_config.json"),
                       ("sparse-max-relu", "1_SpladePooling/config.json")]:
        path = copy(tmp_path / file.replace("/", "_"), name)
        edit(path / file, foo_bar=1)
        their_cls, our_cls = ((st.SentenceTransformer, onnx_st.SentenceTransformer) if name.startswith("dense")
                              else (st.SparseEncoder, onnx_st.SparseEncoder))
        with pytest.raises(TypeError, match="unexpected keyword argument 'foo_bar'"):
            their_cls(str(path), device="cpu")
        with pytest.raises(ConfigError, match="unexpected keyword argument 'foo_bar'"):
            our_cls(str(path))

    path = copy(tmp_path / "router", "dense-router")
    config = json.loads((path / "router_config.json").read_text())
    config["parameters"]["foo"] = 1
    (path / "router_config.json").write_text(json.dumps(config))
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        st.SentenceTransformer(str(path), device="cpu")
    with pytest.raises(ConfigError, match="unexpected keyword argument 'foo'"):
        onnx_st.SentenceTransformer(str(path))


def same_features(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(got) == len(expected)
    for mine, ref in zip(got, expected):
        assert set(mine) == set(ref)
        for key, value in ref.items():
            if isinstance(value, torch.Tensor):
                assert np.shape(mine[key]) == tuple(value.shape), key
                close(mine[key], value.float().numpy())
            else:
                assert mine[key] == value, key


@pytest.mark.parametrize("name, call", [
    ("dense-mean", lambda m: m.encode(TEXTS, output_value=None)),
    ("dense-mean", lambda m: m.encode(TEXTS, output_value=None, prompt="query: ", batch_size=2)),
    ("dense-router", lambda m: m.encode(TEXTS, output_value=None)),
    ("dense-router", lambda m: m.encode_query(TEXTS, output_value=None, prompt="q: ")),
    ("multi-vector-basic", lambda m: m.encode_query(TEXTS, output_value=None)),
    ("multi-vector-basic", lambda m: m.encode_document(TEXTS, output_value=None, truncate_dim=8)),
])
def test_output_value_none_gives_every_feature(name: str, call: Any) -> None:
    their_cls, our_cls = ((st.MultiVectorEncoder, onnx_st.MultiVectorEncoder) if name.startswith("multi")
                          else (st.SentenceTransformer, onnx_st.SentenceTransformer))
    path = str(fixture_dir(name))
    same_features(call(our_cls(path)), call(their_cls(path, device="cpu")))


def test_max_seq_length_on_inference_free_splade() -> None:
    path = str(fixture_dir("sparse-inference-free"))
    theirs, ours = st.SparseEncoder(path, device="cpu"), onnx_st.SparseEncoder(path)
    theirs.max_seq_length = ours.max_seq_length = 5
    assert ours.max_seq_length == theirs.max_seq_length == 5
    their_routes = [chain[0].max_seq_length for chain in theirs[0].sub_modules.values()]
    our_routes = [chain[0].max_seq_length for chain in ours.modules[0].routes.values()]
    assert our_routes == their_routes == [5, 5]
    for method in ("encode_query", "encode_document"):
        expected = getattr(theirs, method)(TEXTS, convert_to_sparse_tensor=False).numpy()
        close(getattr(ours, method)(TEXTS, convert_to_sparse_tensor=False), expected)


@pytest.mark.parametrize("path, error", [("torch.nosuchmod.Act", ModuleNotFoundError),
                                         ("torch.nn.modules.nosuchmod.Sigmoid", ModuleNotFoundError)])
def test_cross_encoder_activation_that_cannot_be_imported(tmp_path: Path, path: str, error: type) -> None:
    model = copy(tmp_path, "cross-1label")
    edit(model / "config_sentence_transformers.json", activation_fn=path)
    with pytest.raises(error) as their_error:
        st.CrossEncoder(str(model), device="cpu")
    with pytest.raises(error) as our_error:
        onnx_st.CrossEncoder(str(model))
    assert str(their_error.value) in str(our_error.value)
    assert isinstance(our_error.value, ConfigError)


def test_cross_encoder_deprecated_properties_warn() -> None:
    path = str(fixture_dir("cross-1label"))
    for model in (st.CrossEncoder(path, device="cpu"), onnx_st.CrossEncoder(path)):
        with pytest.warns(DeprecationWarning, match="`default_activation_function` property was renamed"):
            model.default_activation_function  # noqa: B018
        with pytest.warns(DeprecationWarning, match="`max_length` property was renamed"):
            assert model.max_length == model.max_seq_length


def test_invalid_pooling_mode_wording(tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer.modules import Pooling as TheirPooling

    path = copy(tmp_path, "dense-mean")
    edit(path / "1_Pooling" / "config.json", pooling_mode="avg")
    with pytest.raises(ValueError) as their_error:
        st.SentenceTransformer(str(path), device="cpu")
    with pytest.raises(ConfigError) as our_error:
        onnx_st.SentenceTransformer(str(path))
    assert str(their_error.value) in str(our_error.value)
    with pytest.raises(ValueError) as their_error:
        TheirPooling(32, ("mean", "bogus"))
    with pytest.raises(ConfigError) as our_error:
        Pooling(32, ("mean", "bogus"))
    assert str(our_error.value) == str(their_error.value)


@pytest.mark.parametrize("name", ["dense-mean", "dense-router", "sparse-max-relu", "multi-vector-basic"])
def test_unknown_encode_keyword_wording(name: str) -> None:
    their_cls, our_cls = {"dense": (st.SentenceTransformer, onnx_st.SentenceTransformer),
                          "sparse": (st.SparseEncoder, onnx_st.SparseEncoder),
                          "multi": (st.MultiVectorEncoder, onnx_st.MultiVectorEncoder)}[name.split("-")[0]]
    path = str(fixture_dir(name))
    theirs, ours = their_cls(path, device="cpu"), our_cls(path)
    for method in ("encode", "encode_query"):
        with pytest.raises(ValueError) as their_error:
            getattr(theirs, method)(TEXTS, foo=1)
        with pytest.raises(InputError) as our_error:
            getattr(ours, method)(TEXTS, foo=1)
        # the valid keywords come from a set there: compare the message up to them, then the names
        expected, _, their_valid = str(their_error.value).partition("are: ")
        got, _, our_valid = str(our_error.value).partition("are: ")
        assert got == expected
        if their_valid:
            assert sorted(ast.literal_eval(our_valid.rstrip("."))) == sorted(ast.literal_eval(their_valid.rstrip(".")))
    if name.startswith("multi"):
        with pytest.raises(ValueError) as their_error:
            theirs.encode(TEXTS, convert_to_tensor=True)
        with pytest.raises(InputError) as our_error:
            ours.encode(TEXTS, convert_to_tensor=True)
        assert str(our_error.value) == str(their_error.value)
