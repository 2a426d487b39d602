"""OnnxSession on small graphs built with the ``onnx`` package: file choice, providers, feeds, dtypes, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnx_st._runtime.session import (
    OnnxSession,
    available_providers,
    check_providers,
    list_onnx_files,
    resolve_onnx_file,
)
from onnx_st.errors import ConfigError, ModelNotFoundError, OnnxModelError, ProviderError
from onnx_st.options import RuntimeOptions

WIDTH = 4


def _graph(inputs: tuple[str, ...] = ("input_ids", "attention_mask"), ids_type: int = TensorProto.INT64
           ) -> onnx.ModelProto:
    """``input_ids -> Gather(table)`` as ``last_hidden_state`` (other inputs declared, unused) and a pooled output."""
    table = numpy_helper.from_array(np.arange(10 * WIDTH, dtype=np.float32).reshape(10, WIDTH), "table")
    nodes = [helper.make_node("Cast", ["input_ids"], ["ids"], to=TensorProto.INT64),
             helper.make_node("Gather", ["table", "ids"], ["last_hidden_state"]),
             helper.make_node("ReduceMax", ["last_hidden_state"], ["pooled"], axes=[1], keepdims=0)]
    declared = [helper.make_tensor_value_info(n, ids_type if n == "input_ids" else TensorProto.INT64,
                                              ["batch", "seq"]) for n in inputs]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", WIDTH]),
               helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", WIDTH])]
    graph = helper.make_graph(nodes, "g", declared, outputs, [table])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _save(directory: Path, model: onnx.ModelProto, name: str = "onnx/model.onnx") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_file_choice_prefers_onnx_folder_then_root(tmp_path: Path) -> None:
    root = _save(tmp_path, _graph(), "model.onnx")
    assert resolve_onnx_file(tmp_path) == root
    folder = _save(tmp_path, _graph())
    assert resolve_onnx_file(tmp_path) == folder
    other = _save(tmp_path, _graph(), "onnx/model_O2.onnx")
    assert resolve_onnx_file(tmp_path, "onnx/model_O2.onnx") == other
    assert list_onnx_files(tmp_path) == ["model.onnx", "onnx/model.onnx", "onnx/model_O2.onnx"]


def test_missing_file_lists_what_is_there(tmp_path: Path) -> None:
    _save(tmp_path, _graph(), "onnx/model_qint8_avx2.onnx")
    with pytest.raises(ModelNotFoundError, match=r"model_qint8_avx2\.onnx"):
        resolve_onnx_file(tmp_path)
    with pytest.raises(ModelNotFoundError, match="none"):
        resolve_onnx_file(tmp_path / "empty")


@pytest.mark.parametrize("name", ["../model.onnx", "/etc/passwd", "onnx/../../x.onnx"])
def test_file_name_outside_the_directory_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "model").mkdir()
    _save(tmp_path, _graph(), "model.onnx")
    with pytest.raises(ConfigError, match="file_name"):
        resolve_onnx_file(tmp_path / "model", name)


def test_only_declared_inputs_are_fed_in_their_declared_dtype(tmp_path: Path) -> None:
    session = OnnxSession(_save(tmp_path, _graph(("input_ids",), TensorProto.INT32)), RuntimeOptions())
    assert session.input_names == ("input_ids",)
    ids = np.array([[1, 2, 3]], dtype=np.int64)
    out = session.run("last_hidden_state", {"input_ids": ids, "token_type_ids": np.zeros_like(ids)})
    np.testing.assert_array_equal(out[0], np.arange(10 * WIDTH, dtype=np.float32).reshape(10, WIDTH)[[1, 2, 3]])


def test_a_missing_input_is_named(tmp_path: Path) -> None:
    session = OnnxSession(_save(tmp_path, _graph()), RuntimeOptions())
    with pytest.raises(OnnxModelError, match="attention_mask"):
        session.run("pooled", {"input_ids": np.ones((1, 2), dtype=np.int64)})


def test_outputs_by_name_else_by_rank(tmp_path: Path) -> None:
    session = OnnxSession(_save(tmp_path, _graph()), RuntimeOptions())
    assert session.pick_output(["token_embeddings", "last_hidden_state"]) == "last_hidden_state"
    assert session.pick_output(["logits"], rank=2) == "pooled"
    with pytest.raises(OnnxModelError, match="outputs"):
        session.pick_output(["logits"], rank=4)


def test_runtime_failure_is_an_onnx_model_error(tmp_path: Path) -> None:
    session = OnnxSession(_save(tmp_path, _graph()), RuntimeOptions())
    with pytest.raises(OnnxModelError, match="ONNX Runtime failed"):
        session.run("pooled", {"input_ids": np.full((1, 2), 99, dtype=np.int64),
                               "attention_mask": np.ones((1, 2), dtype=np.int64)})


def test_unreadable_file_is_an_onnx_model_error(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07 not a protobuf of a graph")
    with pytest.raises(OnnxModelError, match="Cannot load ONNX file"):
        OnnxSession(path, RuntimeOptions())


def test_providers_are_checked_never_silently_replaced(tmp_path: Path) -> None:
    assert "CPUExecutionProvider" in available_providers()
    with pytest.raises(ProviderError, match="available"):
        check_providers(["NoSuchExecutionProvider"])
    with pytest.raises(ProviderError, match="NoSuchExecutionProvider"):
        OnnxSession(_save(tmp_path, _graph()), RuntimeOptions.from_kwargs(provider="NoSuchExecutionProvider"))


def test_threads_and_prepack_options_give_the_same_output(tmp_path: Path) -> None:
    path = _save(tmp_path, _graph())
    feeds = {"input_ids": np.array([[1, 5, 9]]), "attention_mask": np.ones((1, 3), dtype=np.int64)}
    default = OnnxSession(path, RuntimeOptions()).run("pooled", feeds)
    tuned = OnnxSession(path, RuntimeOptions(intra_op_num_threads=1, inter_op_num_threads=1, prepack=False))
    np.testing.assert_array_equal(tuned.run("pooled", feeds), default)


def test_ort_profile_is_written_when_the_session_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ONNX_ST_ORT_PROFILE`` turns on ONNX Runtime's profiler; ``tools.profile_ops`` reads what it writes."""
    import gc

    from tools.profile_ops import operator_times

    path = _save(tmp_path / "model", _graph())
    monkeypatch.setenv("ONNX_ST_ORT_PROFILE", str(tmp_path / "ort"))
    session = OnnxSession(path, RuntimeOptions())
    ids = np.array([[1, 2, 3]], dtype=np.int64)
    for _ in range(3):
        session.run("pooled", {"input_ids": ids, "attention_mask": np.ones_like(ids)})
    del session
    gc.collect()
    profiles = list(tmp_path.glob("ort*.json"))
    assert len(profiles) == 1, profiles
    kernels, runs = operator_times(profiles[0])
    assert set(kernels) >= {"Gather", "ReduceMax"} and runs > 0, (kernels, runs)
    monkeypatch.delenv("ONNX_ST_ORT_PROFILE")
    assert not OnnxSession(path, RuntimeOptions())._session.get_session_options().enable_profiling
