"""Batch-invariant int8 (activation scales per token row) and ``file_name="auto"``.

The invariance claim is exact: a text's int8 embedding has the same bits whatever batch size and
whatever neighbours it is encoded with (integer products, then per-row and per-column scales).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import onnx_st
from onnx_st._runtime.variants import choose_file
from onnx_st.errors import ModelNotFoundError

from .conftest import fixture_dir

pytest.importorskip("torch", reason="the int8 files are built by the exporter (export extra); CI's second stage runs this")

INT8 = "onnx/model_qint8_avx512_vnni.onnx"
AVX2 = "onnx/model_qint8_avx2.onnx"
TEXTS = ["a", "short text", "A much longer sentence that brings a lot of padding to its shorter neighbours.",
         "Numbers 12345 and symbols !?", "the quick brown fox jumps over the lazy dog " * 6,
         "int8", "batch invariance means the same bits", "zzz"]


def _build(source: Path, target: Path, family: str = "avx512_vnni", activations: str = "row") -> dict[str, Any]:
    from exporter.quantize import quantize_graph

    return quantize_graph(source, target, family, activations=activations)


def _batch_spread(model: onnx_st.SentenceTransformer, texts: list[str]) -> float:
    """Largest difference of any text's embedding across batch sizes and neighbour orders (vs one at a time)."""
    alone = np.stack([model.encode([t])[0] for t in texts])
    worst = 0.0
    for batch_size in (2, 3, len(texts)):
        for order in (texts, texts[::-1], texts[1::2] + texts[::2]):
            out = model.encode(order, batch_size=batch_size)
            index = [texts.index(t) for t in order]
            worst = max(worst, float(np.abs(out - alone[index]).max()))
    return worst


@pytest.fixture(scope="module")
def int8_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("rowq") / "model"
    shutil.copytree(fixture_dir("dense-mean"), target)
    _build(target / "onnx" / "model.onnx", target / INT8)
    _build(target / "onnx" / "model.onnx", target / "onnx" / "model_qint8_avx2.onnx", "avx2", activations="tensor")
    return target


def test_row_int8_is_batch_invariant_to_the_bit(int8_dir: Path) -> None:
    model = onnx_st.SentenceTransformer(str(int8_dir), model_kwargs={"file_name": INT8})
    assert _batch_spread(model, TEXTS) == 0.0
    reference = onnx_st.SentenceTransformer(str(int8_dir)).encode(TEXTS)
    cosines = (model.encode(TEXTS) * reference).sum(axis=1)  # both normalized
    assert cosines.min() > 0.98


def test_per_tensor_int8_depends_on_its_batch(int8_dir: Path) -> None:
    """The control: ONNX Runtime's per-tensor dynamic quantization is what the row-wise file fixes."""
    model = onnx_st.SentenceTransformer(str(int8_dir), model_kwargs={"file_name": AVX2})
    assert _batch_spread(model, TEXTS) > 1e-4


def _records(directory: Path, **files: dict[str, Any]) -> None:
    base = {"max_abs_diff": 1e-7, "min_cosine": 1.0, "mean_cosine": 1.0, "texts": 12, "passed": True,
            "gpu_only": False, "thresholds": {"max_abs_diff": 1e-5}, "created_by": {"method": "export"}}
    records = {"onnx/model.onnx": base}
    for name, record in files.items():
        records[name.replace("__", "/").replace("_dot_", ".")] = {**base, **record}
    (directory / "onnx" / "parity.json").write_text(json.dumps(records))


def _int8_record(invariant: bool, passed: bool = True) -> dict[str, Any]:
    return {"passed": passed, "min_cosine": 0.99, "thresholds": {"min_cosine": 0.98},
            "created_by": {"method": "quantize", "settings": {"batch_invariant": invariant}}}


def test_auto_picks_the_fastest_qualifying_file(int8_dir: Path) -> None:
    _records(int8_dir, onnx__model_qint8_avx512_vnni_dot_onnx=_int8_record(True),
             onnx__model_qint8_avx2_dot_onnx=_int8_record(False))
    vnni = choose_file(int8_dir, families=["avx512_vnni", "avx512", "avx2"])
    assert vnni.file_name == INT8 and "int8" in vnni.reason
    only_avx2 = choose_file(int8_dir, families=["avx2"])
    assert only_avx2.file_name == "onnx/model.onnx"
    rejected = dict(only_avx2.rejected)
    assert "lacks the avx512_vnni" in rejected[INT8] and "per batch" in rejected[AVX2]


def test_auto_prefers_model_onnx_to_optimization_levels(tmp_path: Path) -> None:
    """O-levels run no faster than the eager-attention model.onnx on CPU: auto takes them only in its absence."""
    model_dir = tmp_path / "model"
    shutil.copytree(fixture_dir("dense-mean"), model_dir)
    shutil.copyfile(model_dir / "onnx" / "model.onnx", model_dir / "onnx" / "model_O2.onnx")
    _records(model_dir, onnx__model_O2_dot_onnx={"created_by": {"method": "optimize", "level": "O2"}})
    choice = choose_file(model_dir, families=[])
    assert choice.file_name == "onnx/model.onnx", choice.summary()
    (model_dir / "onnx" / "model.onnx").rename(model_dir / "onnx" / "source.onnx")
    assert choose_file(model_dir, families=[]).file_name == "onnx/model_O2.onnx"


def test_auto_skips_files_that_missed_or_lack_records(int8_dir: Path) -> None:
    _records(int8_dir, onnx__model_qint8_avx512_vnni_dot_onnx=_int8_record(True, passed=False))
    choice = choose_file(int8_dir, families=["avx512_vnni"])
    assert choice.file_name == "onnx/model.onnx"
    assert dict(choice.rejected) == {INT8: "missed its parity thresholds", AVX2: "no parity record"}


def test_auto_through_model_kwargs_loads_the_choice(int8_dir: Path) -> None:
    from onnx_st.cpu import int8_families

    _records(int8_dir, onnx__model_qint8_avx512_vnni_dot_onnx=_int8_record(True))
    model = onnx_st.SentenceTransformer(str(int8_dir), model_kwargs={"file_name": "auto"})
    expected = INT8 if "avx512_vnni" in int8_families() else "onnx/model.onnx"
    assert model.modules[0].session.path == int8_dir / expected  # type: ignore[attr-defined]


def test_auto_without_any_usable_file(tmp_path: Path) -> None:
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model_O4.onnx").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="no usable ONNX file"):
        choose_file(tmp_path)


@pytest.mark.real
def test_real_minilm_row_int8_is_batch_invariant(tmp_path: Path, minilm_onnx_dir: Path) -> None:
    source = minilm_onnx_dir
    target = tmp_path / "model"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model_*.onnx", "parity.json", "*.safetensors"))
    settings = _build(target / "onnx" / "model.onnx", target / INT8)
    assert settings["batch_invariant"] and settings["quantized_matmuls"] == 36
    from exporter.corpus import benchmark_sentences

    texts = benchmark_sentences(24)
    model = onnx_st.SentenceTransformer(str(target), model_kwargs={"file_name": INT8})
    assert _batch_spread(model, texts) == 0.0


def test_int8_families_follow_the_instruction_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    from onnx_st import cpu

    monkeypatch.setattr(cpu.platform, "machine", lambda: "x86_64")
    assert cpu.int8_families(frozenset({"avx2", "fma"})) == ["avx2"]
    assert cpu.int8_families(frozenset({"avx2", "avx512f", "avx512bw"})) == ["avx512", "avx2"]
    assert cpu.int8_families(frozenset({"avx2", "avx512f", "avx512bw", "avx512_vnni"})) == [
        "avx512_vnni", "avx512", "avx2"]
    assert cpu.int8_families(frozenset({"sse4_2", "asimd"})) == []
    monkeypatch.setattr(cpu.platform, "machine", lambda: "aarch64")
    assert cpu.int8_families(frozenset({"fp", "asimd"})) == ["arm64"]
    assert cpu.cpu_header().startswith("CPU: ")
