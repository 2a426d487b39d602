"""Model directories from strangers: paths that leave the directory and malformed config values are a
ConfigError naming the file and the key; any JSON in any config file loads or fails with an OnnxSTError."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

import onnx_st
from onnx_st._runtime.config import inside
from onnx_st.errors import ConfigError, OnnxSTError
from onnx_st.functional import ACTIVATIONS

from .conftest import fixture_dir

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
KINDS = {"dense": onnx_st.SentenceTransformer, "sparse": onnx_st.SparseEncoder, "cross": onnx_st.CrossEncoder,
         "multi": onnx_st.MultiVectorEncoder}
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
                    | st.text(max_size=8), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
ESCAPES = ["../outside", "../../outside", "sub/../../outside", "/tmp/outside", "./../outside", "a/./../../outside"]


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(fixture_dir(name), target)
    return target


def _edit(file: Path, **changes: Any) -> None:
    data = json.loads(file.read_text()) if file.is_file() else {}
    data.update(changes)
    file.write_text(json.dumps(data))


def _load(fixture: str, path: Path) -> Any:
    kind = KINDS[fixture.split("-")[0]]
    model = kind(str(path))
    if kind is onnx_st.CrossEncoder:
        return model.predict([("a query", "a document")])
    return model.encode(["a short text"])


# --- paths -----------------------------------------------------------------------------------------------

@given(parts=st.lists(st.sampled_from(["a", "b", ".", "..", ""]), min_size=1, max_size=6))
def test_inside_never_leaves_the_directory(parts: list[str]) -> None:
    """Any relative path: the result lies lexically under the directory, or it is a ConfigError."""
    base = Path("/models/m")
    try:
        result = inside(base, "/".join(parts), "path", "modules.json")
    except ConfigError as exc:
        assert "modules.json" in str(exc)
        return
    assert os.path.normpath(result).startswith(str(base))


@pytest.mark.parametrize("escape", ESCAPES)
def test_module_path_outside_the_directory(tmp_path: Path, escape: str) -> None:
    path = _copy(tmp_path, "dense-mean")
    shutil.copytree(path / "1_Pooling", tmp_path / "outside")
    modules = json.loads((path / "modules.json").read_text())
    modules[1]["path"] = escape
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ConfigError, match=f"modules.json.*{escape}"):
        onnx_st.SentenceTransformer(str(path))


@pytest.mark.parametrize("escape", ESCAPES)
def test_onnx_file_name_outside_the_directory(tmp_path: Path, escape: str) -> None:
    path = _copy(tmp_path, "dense-mean")
    shutil.copy(path / "onnx" / "model.onnx", tmp_path / "outside.onnx")
    with pytest.raises(ConfigError, match=f"file_name.*{escape}"):
        onnx_st.SentenceTransformer(str(path), model_kwargs={"file_name": escape + ".onnx"})


@pytest.mark.parametrize("escape", ESCAPES)
def test_idf_file_outside_the_directory(tmp_path: Path, escape: str) -> None:
    path = _copy(tmp_path, "sparse-inference-free")
    (tmp_path / "outside.json").write_text('{"hello": 1.0}')
    _edit(path / "query_0_SparseStaticEmbedding" / "config.json", path=escape + ".json")
    with pytest.raises(ConfigError, match=f"config.json.*{escape}"):
        onnx_st.SparseEncoder(str(path))


# --- malformed values ------------------------------------------------------------------------------------

INVALID = {  # (fixture, file, key): a strategy of values sentence-transformers could not run either
    ("dense-mean", "sentence_bert_config.json", "max_seq_length"):
        st.integers(max_value=0) | st.text(max_size=4) | st.floats() | st.booleans(),
    ("dense-mean", "sentence_bert_config.json", "do_lower_case"): st.integers() | st.text(max_size=4),
    ("dense-mean", "sentence_bert_config.json", "transformer_task"): st.text(max_size=8) | st.integers(),
    ("dense-mean", "1_Pooling/config.json", "embedding_dimension"):
        st.integers(max_value=0) | st.text(max_size=4) | st.floats() | st.lists(st.integers(), max_size=2),
    ("dense-mean", "1_Pooling/config.json", "pooling_mode"):
        st.text(max_size=6) | st.integers() | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    ("dense-mean", "1_Pooling/config.json", "include_prompt"): st.integers() | st.text(max_size=4),
    ("dense-mean", "tokenizer_config.json", "padding_side"): st.text(max_size=8) | st.integers(),
    ("dense-mean", "tokenizer_config.json", "truncation_side"): st.text(max_size=8) | st.integers(),
    ("dense-mean", "config.json", "hidden_size"): st.integers(max_value=0) | st.text(max_size=4) | st.floats(),
    ("dense-mean", "config_sentence_transformers.json", "similarity_fn_name"): st.text(max_size=8) | st.integers(),
    ("dense-mean", "config_sentence_transformers.json", "prompts"): st.text(max_size=4) | st.integers()
        | st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
    ("dense-mean", "config_sentence_transformers.json", "truncate_dim"): st.integers(max_value=0) | st.text(max_size=4),
    ("dense-dense-layer", "2_Dense/config.json", "activation_function"):
        st.text(max_size=8).filter(lambda name: name.rsplit(".", 1)[-1] not in ACTIVATIONS) | st.integers(),
    ("cross-1label", "config.json", "num_labels"): st.integers(max_value=0) | st.text(max_size=4) | st.floats(),
    ("cross-1label", "config.json", "id2label"): st.dictionaries(
        st.text(max_size=3).filter(lambda k: not k.isdigit()), st.text(max_size=3), min_size=1, max_size=2),
    ("sparse-sum-log1p", "1_SpladePooling/config.json", "pooling_strategy"): st.text(max_size=6) | st.integers(),
}


@pytest.mark.parametrize(("fixture", "file", "key"), list(INVALID), ids=["/".join(k[1:]) for k in INVALID])
def test_malformed_value_is_a_config_error_naming_file_and_key(tmp_path: Path, fixture: str, file: str,
                                                               key: str) -> None:
    @FAST
    @given(value=INVALID[(fixture, file, key)])
    def check(value: Any) -> None:
        path = _copy(tmp_path, fixture)
        _edit(path / file, **{key: value})
        with pytest.raises(ConfigError) as info:
            _load(fixture, path)
        assert Path(file).name in str(info.value) and key in str(info.value), str(info.value)

    check()


@pytest.mark.parametrize("fixture", ["dense-mean", "dense-router", "dense-dense-layer", "dense-static", "cross-3labels",
                                     "sparse-sum-log1p", "sparse-inference-free", "multi-vector-expansion",
                                     "multi-vector-pooling", "multi-vector-pylate", "multi-vector-stanford"])
def test_any_json_in_any_config_file_loads_or_fails_cleanly(tmp_path: Path, fixture: str) -> None:
    """Each JSON file replaced by arbitrary JSON, or one of its keys set to arbitrary JSON: a model that
    runs, or an OnnxSTError; never another exception."""
    skip = ("inputs.json", "meta.json", "decode.json", "rank.json", "tokenizer.json")
    files = sorted(str(p.relative_to(fixture_dir(fixture))) for p in fixture_dir(fixture).rglob("*")
                   if p.suffix in (".json", ".metadata") and p.name not in skip)

    @FAST
    @given(file=st.sampled_from(files), whole=st.booleans(), value=JSON, data=st.data())
    def check(file: str, whole: bool, value: Any, data: st.DataObject) -> None:
        path = _copy(tmp_path, fixture)
        original = json.loads((path / file).read_text())
        if not whole and isinstance(original, dict) and original:
            original[data.draw(st.sampled_from(sorted(original)))] = value
            value = original
        (path / file).write_text(json.dumps(value))
        try:
            _load(fixture, path)
        except OnnxSTError:
            pass

    check()


@pytest.mark.parametrize(("file", "content"), [
    ("modules.json", "[" * 100_000 + "]" * 100_000),
    ("config.json", '{"a":' * 100_000 + "1" + "}" * 100_000),
    ("1_Pooling/config.json", '["not", "an", "object"]'),
    ("sentence_bert_config.json", "\xff\xfe not utf-8"),
    ("modules.json", '{"idx": 0}'),
], ids=["deep-list", "deep-object", "json-list", "not-utf8", "modules-object"])
def test_unreadable_json_file(tmp_path: Path, file: str, content: str) -> None:
    path = _copy(tmp_path, "dense-mean")
    (path / file).write_bytes(content.encode("latin-1"))
    with pytest.raises(ConfigError, match=Path(file).name):
        onnx_st.SentenceTransformer(str(path))


@pytest.mark.parametrize(("entry", "match"), [({"idx": "zero"}, "idx"), ({"type": 3}, "type"),
                                              ({"path": ["x"]}, "module path")])
def test_malformed_modules_entry(tmp_path: Path, entry: dict[str, Any], match: str) -> None:
    path = _copy(tmp_path, "dense-mean")
    modules = json.loads((path / "modules.json").read_text())
    modules[1].update(entry)
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ConfigError, match=match):
        onnx_st.SentenceTransformer(str(path))


def test_router_naming_an_unknown_module(tmp_path: Path) -> None:
    path = _copy(tmp_path, "dense-router")
    config = json.loads((path / "router_config.json").read_text())
    config["structure"]["query"].append("nowhere")
    (path / "router_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="router_config.json.*'nowhere'"):
        onnx_st.SentenceTransformer(str(path))


def _rewrite(file: Path, change: Any) -> None:
    tensors = load_file(str(file))
    save_file(change(tensors), str(file))


@pytest.mark.parametrize(("change", "match"), [
    (lambda t: {**t, "linear.weight": t["linear.weight"][0]}, "2-D"),
    (lambda t: {**t, "linear.bias": t["linear.bias"][:-1]}, "linear.bias"),
    (lambda t: {**t, "linear.weight": np.ones((t["linear.weight"].shape[0], 7), np.float32)}, "in_features|shape"),
], ids=["1d-weight", "short-bias", "in-features"])
def test_dense_weights_that_do_not_fit(tmp_path: Path, change: Any, match: str) -> None:
    path = _copy(tmp_path, "dense-dense-layer")
    _rewrite(path / "2_Dense" / "model.safetensors", change)
    config = json.loads((path / "2_Dense" / "config.json").read_text())
    tensors = load_file(str(path / "2_Dense" / "model.safetensors"))
    if tensors["linear.weight"].ndim == 2:  # consistent with its own config, not with the pooled size
        config["out_features"], config["in_features"] = map(int, tensors["linear.weight"].shape)
    (path / "2_Dense" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=match):
        onnx_st.SentenceTransformer(str(path))


def test_static_table_smaller_than_the_vocabulary(tmp_path: Path) -> None:
    path = _copy(tmp_path, "dense-static")
    _rewrite(path / "model.safetensors", lambda t: {k: v[: len(v) // 2] for k, v in t.items()})
    with pytest.raises(ConfigError, match="rows for a vocabulary"):
        onnx_st.SentenceTransformer(str(path))


@pytest.mark.parametrize("idf", ['["a", "list"]', '{"hello": "x"}', '{"hello": null}', "{"])
def test_invalid_idf_file(tmp_path: Path, idf: str) -> None:
    path = _copy(tmp_path, "sparse-inference-free")
    module = path / "query_0_SparseStaticEmbedding"
    (module / "idf.json").write_text(idf)
    _edit(module / "config.json", path="idf.json")
    with pytest.raises(ConfigError, match="idf.json"):
        onnx_st.SparseEncoder(str(path))


def test_foreign_errors_is_the_one_boundary() -> None:
    """Foreign exceptions become the given error with the cause kept; ours and memory errors pass unchanged."""
    from onnx_st.errors import InputError, foreign_errors

    with pytest.raises(ConfigError, match="reading x: ValueError: bad") as info, foreign_errors(ConfigError, "reading x"):
        raise ValueError("bad")
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(ConfigError, match="nested too deeply"), foreign_errors(ConfigError, "reading x"):
        raise RecursionError("maximum recursion depth exceeded")
    for passing in (InputError("ours"), MemoryError()):
        with pytest.raises(type(passing)), foreign_errors(ConfigError, "reading x"):
            raise passing


@pytest.mark.parametrize(("fixture", "file", "changes", "match"), [
    ("multi-vector-expansion", "sentence_bert_config.json",
     {"query_expansion": {"strategy": "fixed", "attend": False, "length": 10**9}}, "max_position_embeddings"),
    ("multi-vector-expansion", "sentence_bert_config.json", {"query_length": 10**9}, "query_length"),
    ("multi-vector-expansion", "sentence_bert_config.json", {"document_length": 10**9}, "document_length"),
    ("multi-vector-stanford", "artifact.metadata", {"query_maxlen": 10**9}, "max_position_embeddings"),
    ("multi-vector-stanford", "artifact.metadata", {"query_token_id": 1}, "query_token_id"),
    ("multi-vector-stanford", "artifact.metadata", {"doc_maxlen": "long"}, "doc_maxlen"),
    ("multi-vector-pylate", "config_sentence_transformers.json", {"skiplist_words": 1}, "skiplist_words"),
    ("multi-vector-pylate", "config_sentence_transformers.json", {"query_prefix": ["[Q]"]}, "query_prefix"),
    ("multi-vector-stanford", "tokenizer_config.json", {"model_max_length": -5}, "model_max_length"),
])
def test_multi_vector_lengths_and_legacy_keys(tmp_path: Path, fixture: str, file: str, changes: dict[str, Any],
                                              match: str) -> None:
    """Lengths past the graph's positions (which would pad queries to them) and malformed legacy keys are
    ConfigErrors at load, in bounded memory."""
    path = _copy(tmp_path, fixture)
    _edit(path / file, **changes)
    with pytest.raises(ConfigError, match=match):
        _load(fixture, path)
