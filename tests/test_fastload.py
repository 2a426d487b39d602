"""Fast-load ONNX files (optimised graph + memory-mapped weights) and ``prepack=False`` keep the golden outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from onnx_st import CrossEncoder, SentenceTransformer
from onnx_st.errors import OnnxModelError
from onnx_st.fastload import data_file, write_fast_load

from .conftest import fixture_dir, fixture_expected, fixture_inputs


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(fixture_dir(name), target)
    return target


@pytest.mark.parametrize("level", ["extended", "basic"])
@pytest.mark.parametrize("prepack", [True, False])
def test_dense_fast_load_equals_golden(tmp_path: Path, level: str, prepack: bool) -> None:
    model_dir = _copy("dense-mean", tmp_path)
    graph, weights = write_fast_load(model_dir / "onnx" / "model.onnx", model_dir / "onnx" / "model_fast.onnx",
                                     level)  # type: ignore[arg-type]
    assert weights == data_file(graph) and weights.stat().st_size > graph.stat().st_size
    model = SentenceTransformer(str(model_dir), model_kwargs={"file_name": "onnx/model_fast.onnx",
                                                              "prepack": prepack})
    expected = fixture_expected("dense-mean")
    np.testing.assert_allclose(model.encode(fixture_inputs("dense-mean")), expected["encode"], atol=1e-5)


def test_in_place_rewrite_of_a_reranker(tmp_path: Path) -> None:
    model_dir = _copy("cross-1label", tmp_path)
    write_fast_load(model_dir / "onnx" / "model.onnx", model_dir / "onnx" / "model.onnx")
    assert (model_dir / "onnx" / "model.onnx_data").is_file()
    inputs = fixture_inputs("cross-1label")
    pairs = [tuple(p) for p in inputs["pairs"]]
    got = CrossEncoder(str(model_dir), model_kwargs={"prepack": False}).predict(pairs)
    np.testing.assert_allclose(got, fixture_expected("cross-1label")["predict"], atol=1e-5)


def test_bad_source_is_an_onnx_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(OnnxModelError, match="bad.onnx"):
        write_fast_load(bad, tmp_path / "out.onnx")
    with pytest.raises(ValueError, match="level"):
        write_fast_load(bad, tmp_path / "out.onnx", "all")  # type: ignore[arg-type]
