"""Fast-load variants written by the exporter hold their source's thresholds against sentence-transformers.

Needs the export extra. The fixture models check the pipeline in seconds (dense-router has two
Transformer folders); the ``real`` tests compare fast-load copies of all-MiniLM-L6-v2 and
all-mpnet-base-v2 with sentence-transformers at 1e-5.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import onnx_st
from exporter.variants import fast_load_file_name, make_variants

from .conftest import fixture_dir


def test_fast_load_names() -> None:
    assert fast_load_file_name("onnx/model.onnx") == "onnx/model_fast.onnx"
    assert fast_load_file_name("onnx/model_qint8_avx2.onnx") == "onnx/model_qint8_avx2_fast.onnx"


@pytest.mark.parametrize("name", ["dense-router", "cross-3labels"])
def test_fixture_fast_load_variants(name: str, tmp_path: Path) -> None:
    model_dir = tmp_path / name
    shutil.copytree(fixture_dir(name), model_dir)
    records = make_variants(model_dir, fast_load=["onnx/model.onnx"], parity_texts=24, echo=lambda _: None)
    by_name = {r.file_name: r for r in records}
    assert all(r.passed for r in records), [r.summary() for r in records if not r.passed]
    fast = by_name["onnx/model_fast.onnx"]
    assert fast.max_abs_diff <= 1e-5 and fast.created_by["method"] == "fast_load"
    assert fast.thresholds == by_name["onnx/model.onnx"].thresholds  # held to its source's
    assert len(list(model_dir.rglob("model_fast.onnx_data"))) == len(list(model_dir.rglob("model.onnx")))
    with pytest.raises(FileNotFoundError, match="model_O2.onnx"):
        make_variants(model_dir, fast_load=["onnx/model_O2.onnx"], parity_texts=8, echo=lambda _: None)
    assert {v.file_name for v in onnx_st.list_variants(model_dir) if v.passed} >= set(by_name)


@pytest.mark.real
@pytest.mark.parametrize("which", ["minilm", "mpnet"])
def test_real_fast_load_equals_sentence_transformers(which: str, request: pytest.FixtureRequest,
                                                     tmp_path: Path) -> None:
    source: Path = request.getfixturevalue(f"{which}_onnx_dir")
    model_dir = tmp_path / which
    shutil.copytree(source, model_dir, ignore=shutil.ignore_patterns("parity.json", "model_*"))
    lines: list[str] = []
    records = make_variants(model_dir, fast_load=["onnx/model.onnx"], parity_texts=48, echo=lines.append)
    fast = {r.file_name: r for r in records}["onnx/model_fast.onnx"]
    assert fast.passed and fast.max_abs_diff <= 1e-5, "\n".join(lines)
