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


def _record(file_name: str, passed: bool = True, **created_by: object) -> dict[str, object]:
    return {"file_name": file_name, "passed": passed, "texts": 8, "thresholds": {"max_abs_diff": 1e-5},
            "max_abs_diff": 0.0, "created_by": created_by}


@pytest.mark.parametrize("case", ["taken", "other-runtime", "failed", "no-data", "no-record"])
def test_auto_takes_the_fast_load_copy_of_its_choice_only_when_it_may(tmp_path: Path, case: str) -> None:
    """``file_name="auto"`` loads ``model_fast.onnx`` in place of ``model.onnx`` when the copy's record passed,
    this ONNX Runtime line wrote it and its weights are there; otherwise the source, saying why."""
    import json
    from importlib.metadata import version

    from onnx_st._runtime.variants import choose_file

    model_dir = _copy("dense-mean", tmp_path)
    _, weights = write_fast_load(model_dir / "onnx" / "model.onnx", model_dir / "onnx" / "model_fast.onnx")
    running = version("onnxruntime")
    written = "0.1.0" if case == "other-runtime" else running
    records = {} if case == "no-record" else {"onnx/model_fast.onnx": _record(
        "onnx/model_fast.onnx", case != "failed", method="fast_load", source="onnx/model.onnx",
        onnxruntime=written, external_data=weights.name)}
    (model_dir / "onnx" / "parity.json").write_text(json.dumps(records))
    if case == "no-data":
        weights.unlink()
    choice = choose_file(model_dir)
    expected = "onnx/model_fast.onnx" if case == "taken" else "onnx/model.onnx"
    assert choice.file_name == expected, choice.summary()
    if case not in ("taken", "no-record"):  # a copy without a record is no exporter variant: never a candidate
        assert "onnx/model_fast.onnx" in dict(choice.rejected)
    if case in ("taken", "no-data", "failed"):
        model = SentenceTransformer(str(model_dir), model_kwargs={"file_name": "auto"})
        np.testing.assert_allclose(model.encode(fixture_inputs("dense-mean")),
                                   fixture_expected("dense-mean")["encode"], atol=1e-5)


@pytest.mark.parametrize("created_by", ["a string", ["a", "list"], 3])
def test_a_record_whose_created_by_is_no_object_is_a_config_error(tmp_path: Path, created_by: object) -> None:
    import json

    from onnx_st._runtime.variants import choose_file
    from onnx_st.errors import ConfigError

    model_dir = _copy("dense-mean", tmp_path)
    write_fast_load(model_dir / "onnx" / "model.onnx", model_dir / "onnx" / "model_fast.onnx")
    record = {**_record("onnx/model_fast.onnx"), "created_by": created_by}
    (model_dir / "onnx" / "parity.json").write_text(json.dumps({"onnx/model_fast.onnx": record}))
    with pytest.raises(ConfigError, match="created_by"):
        choose_file(model_dir)
