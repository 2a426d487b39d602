"""Malformed ONNX graphs (built with the ``onnx`` package): an OnnxModelError saying what was expected and what
came out, never a wrong vector. No torch needed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import onnx_st
from onnx_st.errors import ConfigError, OnnxModelError

from .conftest import fixture_dir

VOCAB, HIDDEN = 600, 32  # of the dense-mean fixture's config.json
TEXTS = ["a short text", "a somewhat longer text than the first one"]
Dims = list[int | str | None] | None


def _graph(build: Callable[[str], tuple[list[onnx.NodeProto], str]], out_shape: Dims, width: int = HIDDEN,
           extra_inputs: tuple[str, ...] = ()) -> onnx.ModelProto:
    """``input_ids -> Gather(table) -> build(...) -> last_hidden_state``: a stand-in for an exported encoder."""
    table = numpy_helper.from_array(np.random.default_rng(0).normal(size=(VOCAB, width)).astype(np.float32), "table")
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["hidden"])]
    more, last = build("hidden")
    nodes += more + [helper.make_node("Identity", [last], ["last_hidden_state"])]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in
              ("input_ids", "attention_mask", *extra_inputs)]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, out_shape)
    graph = helper.make_graph(nodes, "g", inputs, [output], [table])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


def _identity(x: str) -> tuple[list[onnx.NodeProto], str]:
    return [], x


def _pad(rows: int, seq: int, width: int) -> Callable[[str], tuple[list[onnx.NodeProto], str]]:
    """Grow (or, negative, crop) each axis of the output at its end."""
    def build(x: str) -> tuple[list[onnx.NodeProto], str]:
        pads = helper.make_node("Constant", [], ["pads"], value=numpy_helper.from_array(
            np.array([0, 0, 0, rows, seq, width], dtype=np.int64)))
        return [pads, helper.make_node("Pad", [x, "pads"], ["padded"], mode="edge")], "padded"
    return build


def _mean_over_seq(x: str) -> tuple[list[onnx.NodeProto], str]:
    axes = helper.make_node("Constant", [], ["axes"], value=numpy_helper.from_array(np.array([1], dtype=np.int64)))
    return [axes, helper.make_node("ReduceMean", [x, "axes"], ["pooled"], keepdims=0)], "pooled"


def _model_with(tmp_path: Path, graph: onnx.ModelProto) -> Path:
    target = tmp_path / "model"
    shutil.copytree(fixture_dir("dense-mean"), target, dirs_exist_ok=True)
    onnx.save(graph, str(target / "onnx" / "model.onnx"))
    return target


def test_a_well_formed_stand_in_graph_encodes(tmp_path: Path) -> None:
    """The builder itself is sound: the plain Gather graph loads and encodes to unit vectors."""
    model = onnx_st.SentenceTransformer(str(_model_with(tmp_path, _graph(_identity, ["batch", "seq", HIDDEN]))))
    out = model.encode(TEXTS)
    assert out.shape == (2, HIDDEN) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize(("graph", "match"), [
    (_graph(_identity, ["batch", "seq", HIDDEN + 1], width=HIDDEN + 1), "width 33.*says 32"),
    (_graph(_mean_over_seq, ["batch", HIDDEN]), "rank 2"),
    (_graph(_identity, ["batch", "seq", HIDDEN], extra_inputs=("pixel_values",)), "pixel_values"),
], ids=["hidden-size-not-config", "output-rank", "unknown-input"])
def test_graph_that_contradicts_the_configs_fails_at_load(tmp_path: Path, graph: onnx.ModelProto,
                                                          match: str) -> None:
    with pytest.raises(OnnxModelError, match=match):
        onnx_st.SentenceTransformer(str(_model_with(tmp_path, graph)))


def test_graph_hidden_size_that_contradicts_pooling_fails_at_load(tmp_path: Path) -> None:
    """config.json and the graph agree on 33, the Pooling config says 32: no (n, 33) vectors reported as 32."""
    path = _model_with(tmp_path, _graph(_identity, ["batch", "seq", HIDDEN + 1], width=HIDDEN + 1))
    config = (path / "config.json").read_text().replace(f'"hidden_size": {HIDDEN}', f'"hidden_size": {HIDDEN + 1}')
    (path / "config.json").write_text(config)
    with pytest.raises(OnnxModelError, match="size 33.*Pooling config expects 32"):
        onnx_st.SentenceTransformer(str(path))


def test_output_of_undeclared_rank_fails(tmp_path: Path) -> None:
    """No declared output shape: ONNX Runtime's inferred rank is checked at load, the actual one on each run."""
    with pytest.raises(OnnxModelError, match="rank 2|should have shape"):
        onnx_st.SentenceTransformer(str(_model_with(tmp_path, _graph(_mean_over_seq, None)))).encode(TEXTS)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(-1, 2), seq=st.integers(-1, 2), width=st.integers(-1, 2))
def test_output_sizes_are_checked_on_every_run(tmp_path: Path, rows: int, seq: int, width: int) -> None:
    """Any graph whose output has more or fewer rows, positions or columns than its inputs (declared shape
    unknown; ONNX Runtime may infer some): an OnnxModelError at load or on the run, never broadcast or
    re-masked vectors."""
    path = str(_model_with(tmp_path, _graph(_pad(rows, seq, width), ["b", "s", "h"])))
    if (rows, seq, width) == (0, 0, 0):
        reference = onnx_st.SentenceTransformer(str(_model_with(tmp_path / "ref", _graph(_identity, None))))
        np.testing.assert_allclose(onnx_st.SentenceTransformer(path).encode(TEXTS), reference.encode(TEXTS),
                                   atol=1e-6)
        return
    with pytest.raises(OnnxModelError, match="expects|should have shape|says 32"):
        onnx_st.SentenceTransformer(path).encode(TEXTS)


def test_cross_encoder_scores_of_the_wrong_batch_size(tmp_path: Path) -> None:
    """A reranker graph returning one score row for two pairs: an error, not one score broadcast to both."""
    target = tmp_path / "cross"
    shutil.copytree(fixture_dir("cross-1label"), target)
    model_path = target / "onnx" / "model.onnx"
    graph = onnx.load(str(model_path))
    out = graph.graph.output[0]
    starts = [numpy_helper.from_array(np.array(v, dtype=np.int64), n) for n, v in
              (("s0", [0]), ("s1", [1]), ("ax", [0]))]
    graph.graph.initializer.extend(starts)
    graph.graph.node.append(helper.make_node("Slice", [out.name, "s0", "s1", "ax"], ["first_row"]))
    del graph.graph.output[:]
    graph.graph.output.append(helper.make_tensor_value_info("first_row", TensorProto.FLOAT, None))
    onnx.save(graph, str(model_path))
    model = onnx_st.CrossEncoder(str(target))
    with pytest.raises(OnnxModelError, match=r"should have shape \(2, 1\)"):
        model.predict([("q", "a"), ("q", "b")])


@pytest.mark.parametrize("location", ["../../outside.bin", "absolute"])
def test_external_data_outside_the_directory(tmp_path: Path, location: str) -> None:
    """A graph whose weights name a file outside the model directory: refused, the file never read."""
    if location == "absolute":
        location = str(tmp_path / "outside.bin")
    graph = _graph(_identity, ["batch", "seq", HIDDEN])
    table = graph.graph.initializer[0]
    table.ClearField("raw_data")
    del table.float_data[:]
    table.data_location = TensorProto.EXTERNAL
    entry = table.external_data.add()
    entry.key, entry.value = "location", location
    path = _model_with(tmp_path, graph)
    Path(location if location.startswith("/") else path / "onnx" / location).resolve().write_bytes(
        np.zeros(VOCAB * HIDDEN, np.float32).tobytes())
    with pytest.raises(ConfigError, match="outside its directory"):
        onnx_st.SentenceTransformer(str(path))
