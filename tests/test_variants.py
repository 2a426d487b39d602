"""ONNX variants and their parity records, read by the runtime (no torch: records are written by hand here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import onnx_st
from onnx_st.errors import ConfigError, ModelNotFoundError

from .conftest import fixture_dir, fixture_inputs

O2 = "onnx/model_O2.onnx"
INT8 = "onnx/model_qint8_avx512_vnni.onnx"


def _record(max_diff: float, min_cos: float, mean_cos: float, passed: bool, **extra: Any) -> dict[str, Any]:
    return {"max_abs_diff": max_diff, "mean_abs_diff": max_diff / 10, "min_cosine": min_cos,
            "mean_cosine": mean_cos, "texts": 12, "passed": passed, "gpu_only": False,
            "provider": "CPUExecutionProvider", "thresholds": {"max_abs_diff": 1e-5},
            "created_by": {"tool": "onnx-st-export", "method": "test"}, **extra}


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    """dense-mean with an O2 and an int8 copy of its graph and records for model.onnx and the int8 file."""
    target = tmp_path / "model"
    shutil.copytree(fixture_dir("dense-mean"), target)
    for name in (O2, INT8):
        shutil.copy(target / "onnx" / "model.onnx", target / name)
    records = {"onnx/model.onnx": _record(2e-7, 1.0, 1.0, True),
               INT8: _record(0.04, 0.97, 0.991, False, thresholds={"mean_cosine": 0.99, "min_cosine": 0.98})}
    (target / "onnx" / "parity.json").write_text(json.dumps(records))
    return target


def test_list_variants_reads_records(model_dir: Path) -> None:
    variants = onnx_st.list_variants(model_dir)
    assert [v.file_name for v in variants] == ["onnx/model.onnx", O2, INT8]
    base, o2, int8 = variants
    assert (base.kind, o2.kind, int8.kind) == ("fp32", "O2", "int8")
    assert int8.cpu_family == "avx512_vnni" and base.cpu_family is None
    assert base.passed is True and int8.passed is False and o2.passed is None and o2.parity is None
    assert base.module_dir == "" and base.size_bytes == (model_dir / "onnx" / "model.onnx").stat().st_size
    summary = int8.to_dict()
    assert summary["min_cosine"] == 0.97 and summary["thresholds"] == {"mean_cosine": 0.99, "min_cosine": 0.98}
    assert "MISSED THRESHOLDS" in int8.summary() and "no parity record" in o2.summary()


def test_runtime_loads_the_named_variant(model_dir: Path) -> None:
    texts = fixture_inputs("dense-mean")
    default = onnx_st.SentenceTransformer(str(model_dir))
    chosen = onnx_st.SentenceTransformer(str(model_dir), model_kwargs={"file_name": O2})
    assert chosen.modules[0].session.path.name == "model_O2.onnx"  # type: ignore[attr-defined]
    np.testing.assert_array_equal(chosen.encode(texts), default.encode(texts))
    with pytest.raises(ModelNotFoundError, match="model_qint8_avx512_vnni.onnx"):
        onnx_st.SentenceTransformer(str(model_dir), model_kwargs={"file_name": "onnx/model_O3.onnx"})


def test_router_variants_name_their_folder() -> None:
    variants = onnx_st.list_variants(fixture_dir("dense-router"))
    assert sorted(v.module_dir for v in variants) == ["document_0_Transformer", "query_0_Transformer"]
    assert {v.file_name for v in variants} == {"onnx/model.onnx"}


@pytest.mark.parametrize("content", ["[1, 2]", "{\"onnx/model.onnx\": 3}", "not json"])
def test_malformed_parity_file_is_a_config_error(model_dir: Path, content: str) -> None:
    (model_dir / "onnx" / "parity.json").write_text(content)
    with pytest.raises(ConfigError, match="parity.json"):
        onnx_st.list_variants(model_dir)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        onnx_st.list_variants(tmp_path / "absent")


def _cli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "onnx_st", *args], capture_output=True, text=True,
                          check=True).stdout


def test_cli_variants_and_info(model_dir: Path) -> None:
    lines = _cli("variants", str(model_dir)).splitlines()
    assert lines[0].startswith("CPU: ") and lines[1] == ".:" and len(lines) == 6
    assert "max|diff| 2.00e-07" in lines[2] and lines[2].rstrip().endswith("ok")
    assert lines[5].startswith("  auto -> onnx/model.onnx (") and "missed its parity thresholds" in lines[5]
    listed = json.loads(_cli("variants", str(model_dir), "--json"))
    assert [v["file_name"] for v in listed] == ["onnx/model.onnx", O2, INT8]
    assert [v["auto"] for v in listed] == [True, False, False]
    info = json.loads(_cli("info", str(model_dir), "--file-name", O2))
    assert [v["kind"] for v in info["variants"]] == ["fp32", "O2", "int8"]
