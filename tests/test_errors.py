"""Bad input and broken model directories give clear errors from one exception tree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import onnx_st
from onnx_st.errors import (
    ConfigError,
    InputError,
    ModelNotFoundError,
    OnnxModelError,
    OnnxSTError,
    ProviderError,
    UnsupportedModuleError,
)

from .conftest import fixture_dir


@pytest.fixture(scope="module")
def model() -> onnx_st.SentenceTransformer:
    return onnx_st.SentenceTransformer(str(fixture_dir("dense-mean")))


@pytest.fixture()
def model_copy(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(fixture_dir("dense-mean"), target)
    return target


def test_every_error_is_an_onnx_st_error() -> None:
    for cls in (ConfigError, InputError, ModelNotFoundError, OnnxModelError, ProviderError, UnsupportedModuleError):
        assert issubclass(cls, OnnxSTError)


@pytest.mark.parametrize("bad", [None, 42, ["ok", None], ["ok", 3.5], [b"bytes"], [["nested"]]])
def test_non_string_input_is_rejected(model: onnx_st.SentenceTransformer, bad: object) -> None:
    with pytest.raises(InputError, match="str"):
        model.encode(bad)  # type: ignore[arg-type]


def test_empty_list_and_empty_strings(model: onnx_st.SentenceTransformer) -> None:
    dim = model.get_embedding_dimension()
    assert model.encode([]).shape == (0, dim)
    assert model.encode([], precision="ubinary").shape == (0, (dim + 7) // 8)
    out = model.encode(["", "", "text"])
    assert out.shape == (3, dim) and np.isfinite(out).all()


def test_huge_text_is_truncated_not_rejected(model: onnx_st.SentenceTransformer) -> None:
    huge = "word " * 20_000  # 100 kB
    out = model.encode([huge, "short"])
    np.testing.assert_allclose(out[0], model.encode("word " * 200), atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"prompt_name": "nope"}, "nope"),
    ({"precision": "int4"}, "int4"),
    ({"truncate_dim": 10_000}, "truncate_dim"),
    ({"truncate_dim": 0}, "truncate_dim"),
    ({"batch_size": 0}, "batch_size"),
    ({"output_value": "logits"}, "output_value"),
    ({"unknown_option": 1}, "unknown_option"),
])
def test_bad_options_are_rejected(model: onnx_st.SentenceTransformer, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        model.encode(["a", "b"], **kwargs)


def test_unavailable_provider_names_the_available_ones(model_copy: Path) -> None:
    with pytest.raises(ProviderError, match="CPUExecutionProvider"):
        onnx_st.Encoder.from_dir(model_copy, provider="CUDAExecutionProvider")


def test_missing_onnx_file_lists_present_files(model_copy: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"onnx/model\.onnx"):
        onnx_st.Encoder.from_dir(model_copy, file_name="onnx/model_O4.onnx")
    shutil.rmtree(model_copy / "onnx")
    with pytest.raises(ModelNotFoundError, match="none"):  # export=False: not exported on load either
        onnx_st.Encoder.from_dir(model_copy, export=False)


def test_corrupt_onnx_file(model_copy: Path) -> None:
    (model_copy / "onnx" / "model.onnx").write_bytes(b"this is not a protobuf")
    with pytest.raises(OnnxModelError, match="model.onnx"):
        onnx_st.Encoder.from_dir(model_copy)


def test_unsupported_module_lists_supported(model_copy: Path) -> None:
    modules = json.loads((model_copy / "modules.json").read_text())
    modules.append({"idx": 9, "name": "9", "path": "9_LSTM", "type": "sentence_transformers.models.LSTM"})
    (model_copy / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsupportedModuleError, match="Pooling"):
        onnx_st.Encoder.from_dir(model_copy)


def test_custom_code_module_is_unsupported(model_copy: Path) -> None:
    modules = json.loads((model_copy / "modules.json").read_text())
    modules[-1]["type"] = "my_package.Pooling"
    (model_copy / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsupportedModuleError, match="my_package"):
        onnx_st.Encoder.from_dir(model_copy)


@pytest.mark.parametrize("name", ["modules.json", "config_sentence_transformers.json", "tokenizer.json"])
def test_corrupt_config_files(model_copy: Path, name: str) -> None:
    (model_copy / name).write_text("{not json")
    with pytest.raises(ConfigError):
        onnx_st.Encoder.from_dir(model_copy)


def test_missing_tokenizer(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelNotFoundError, match="tokenizer.json"):
        onnx_st.Encoder.from_dir(model_copy)


def test_pickle_weights_are_never_loaded(tmp_path: Path) -> None:
    target = tmp_path / "model"
    shutil.copytree(fixture_dir("dense-dense-layer"), target)
    dense = next(p for p in target.iterdir() if p.name.endswith("_Dense"))
    (dense / "model.safetensors").rename(dense / "pytorch_model.bin")
    with pytest.raises(ModelNotFoundError, match="pickle"):
        onnx_st.Encoder.from_dir(target)


def test_backend_other_than_onnx(model_copy: Path) -> None:
    with pytest.raises(InputError, match="onnx"):
        onnx_st.SentenceTransformer(str(model_copy), backend="torch")


def test_model_still_works_after_errors(model: onnx_st.SentenceTransformer) -> None:
    before = model.encode(["stable"])
    for bad in (None, [1], ["x"] * 2):
        try:
            model.encode(bad, precision="nope")  # type: ignore[arg-type]
        except InputError:
            pass
    np.testing.assert_array_equal(model.encode(["stable"]), before)
