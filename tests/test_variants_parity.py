"""Exporter variants (O1-O4, int8 per CPU family) and their parity records (needs the export extra).

The tiny fixture models check the whole pipeline in seconds; the ``real`` test optimizes and
quantizes the real all-MiniLM-L6-v2 (on a copy: O2 and avx2) on 300 texts. The issue's 2,000-text figures come
from ``onnx-st-export --variants-only DIR ... --parity-texts 2000``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import onnx_st
from exporter.cli import main as export_main
from exporter.optimize import level_file_name
from exporter.parity import THRESHOLDS, ParityRecord, compare, thresholds_for, write_records
from exporter.quantize import EXCLUSION_STEPS, SELECTION_TARGETS, family_file_name, search_exclusions, selection_targets
from exporter.variants import make_variants

from .conftest import fixture_dir


def _record(name: str, kind: str = "int8", **metrics: float) -> ParityRecord:
    values: dict[str, Any] = {"max_abs_diff": 0.01, "mean_abs_diff": 0.001, "min_cosine": 0.99,
                              "mean_cosine": 0.995, "score_correlation": None, **metrics}
    return ParityRecord(file_name=name, texts=10, thresholds=THRESHOLDS[kind], **values)


def _op_types(path: Path) -> list[str]:
    import onnx

    return [node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node]


def test_file_names_follow_sentence_transformers() -> None:
    assert [level_file_name(level) for level in ("O1", "O4")] == ["onnx/model_O1.onnx", "onnx/model_O4.onnx"]
    assert family_file_name("avx2") == "onnx/model_qint8_avx2.onnx"
    assert [family_file_name(f) for f in ("avx512", "avx512_vnni", "arm64")] == [
        "onnx/model_qint8_avx512.onnx", "onnx/model_qint8_avx512_vnni.onnx", "onnx/model_qint8_arm64.onnx"]
    with pytest.raises(ValueError):
        family_file_name("sse4")
    with pytest.raises(ValueError):
        level_file_name("O5")


def test_record_thresholds() -> None:
    assert _record("a").passed
    low = _record("b", min_cosine=0.97)
    assert not low.passed and low.failures() == ["min_cosine 0.970000 < 0.98"] and "FAILED" in low.summary()
    assert not _record("c", "fp32", max_abs_diff=2e-5).passed
    unmeasured = _record("d", min_cosine=None)  # type: ignore[arg-type]
    assert not unmeasured.passed and "not measured" in unmeasured.failures()[0]
    assert thresholds_for("int8", "cross") == {"score_correlation": 0.99}


def test_compare_metrics() -> None:
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    got = compare(a, np.array([[1.0, 0.1], [0.0, 2.0]]))
    assert got["max_abs_diff"] == pytest.approx(0.1) and got["mean_cosine"] == pytest.approx((1 + 1 / np.sqrt(1.01)) / 2)
    scores = compare(np.array([0.1, 0.5, 0.9]), np.array([0.2, 0.6, 1.0]))
    assert scores["min_cosine"] is None and scores["score_correlation"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        compare(a, a[:1])


def test_exclusion_search_stops_at_first_step_meeting_targets() -> None:
    written: list[int] = []
    means = iter([0.98, 0.991, 0.995, 0.999])
    chosen, trail = search_exclusions(written.append, lambda: {"mean_cosine": next(means), "min_cosine": 0.99}, 20)
    assert chosen == 2 and written == [0, 1, 2] and [t["excluded"] for t in trail] == [0, 1, 2]
    chosen, _ = search_exclusions(written.append, lambda: {"mean_cosine": 0.5, "min_cosine": 0.5}, 5)
    assert chosen == max(k for k in EXCLUSION_STEPS if k <= 5)


def test_rerankers_are_selected_on_score_correlation() -> None:
    assert selection_targets("dense") == SELECTION_TARGETS and selection_targets("sparse") == SELECTION_TARGETS
    targets = selection_targets("cross")
    assert targets == {"score_correlation": 0.993}
    correlations = iter([0.98, 0.992, 0.995])
    chosen, trail = search_exclusions(lambda _: None, lambda: {"mean_cosine": None, "min_cosine": None,
                                                               "score_correlation": next(correlations)}, 8, targets)
    assert chosen == 2 and trail[-1] == {"excluded": 2, "score_correlation": 0.995}


def test_write_records_merges(tmp_path: Path) -> None:
    write_records(tmp_path, [_record("onnx/a.onnx")])
    write_records(tmp_path, [_record("onnx/b.onnx", min_cosine=0.5)])
    data = json.loads((tmp_path / "parity.json").read_text())
    assert sorted(data) == ["onnx/a.onnx", "onnx/b.onnx"] and data["onnx/b.onnx"]["passed"] is False


def test_cli_variants_only_arguments() -> None:
    for argv in (["--variants-only", "x"], ["m", "out", "--variants-only", "x", "--quantize", "avx2"], []):
        with pytest.raises(SystemExit) as exc:
            export_main(argv)
        assert exc.value.code == 2


@pytest.mark.parametrize("name", ["dense-mean", "dense-router", "sparse-max-relu", "cross-3labels",
                                  "multi-vector-basic"])
def test_tiny_models_pipeline(name: str, tmp_path: Path) -> None:
    model_dir = tmp_path / name
    shutil.copytree(fixture_dir(name), model_dir)
    records = make_variants(model_dir, optimize=["O2", "O4"], quantize=["avx2"], parity_texts=24, echo=lambda _: None)
    assert [r.file_name for r in records] == ["onnx/model.onnx", "onnx/model_O2.onnx", "onnx/model_O4.onnx",
                                              "onnx/model_qint8_avx2.onnx"]
    assert all(r.passed for r in records), [r.summary() for r in records if not r.passed]
    o2 = records[1].created_by
    assert o2["source"] == "eager-attention export" and all(f.get("Attention") for f in o2["fused_operators"])
    assert records[2].gpu_only and not records[1].gpu_only
    int8 = records[3].created_by
    metric = "score_correlation" if name.startswith("cross") else "min_cosine"
    assert all(metric in step for step in int8["selection"]["trail"]), int8["selection"]
    assert int8["source"] == "O2 (no SkipLayerNormalization) of the eager-attention export", int8["source"]
    assert int8["settings"]["batch_invariant"] is True and int8["settings"]["reduce_range"] is True
    for path in model_dir.rglob("model_qint8_avx2.onnx"):  # fused Attention split: int8 projections, float32 core
        types = _op_types(path)
        assert types.count("MultiHeadAttention") > 0 and "Attention" not in types, types
        assert types.count("MatMulIntegerToFloat") > 0 and "DynamicQuantizeMatMul" not in types, types
        assert "SkipLayerNormalization" not in types and "LayerNormalization" in types, types
    variants = onnx_st.list_variants(model_dir)
    assert {v.kind for v in variants} == {"fp32", "O2", "O4", "int8"} and all(v.passed for v in variants)


def test_int8_keeps_a_float32_embedding_table_when_int8_misses_its_targets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Targets no int8 file meets: the search runs again with the embedding table in float32, and says so."""
    import exporter.quantize

    monkeypatch.setattr(exporter.quantize, "SELECTION_TARGETS", {"mean_cosine": 1.5, "min_cosine": 1.5})
    model_dir = tmp_path / "model"
    shutil.copytree(fixture_dir("multi-vector-basic"), model_dir)
    record = make_variants(model_dir, quantize=["avx512_vnni"], parity_texts=24, echo=lambda _: None)[-1]
    trail = record.created_by["selection"]["trail"]
    assert {step["embeddings"] for step in trail} == {"int8", "float32"}, trail
    assert trail[-1]["embeddings"] == "float32" and record.created_by["settings"]["embeddings"] == "float32"
    types = _op_types(model_dir / "onnx" / "model_qint8_avx512_vnni.onnx")
    assert "QEmbedLayerNormalization" not in types and "DynamicQuantizeLinear" not in types, types


@pytest.mark.real
def test_minilm_variants_meet_thresholds(minilm_onnx_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "minilm"
    shutil.copytree(minilm_onnx_dir, model_dir, ignore=shutil.ignore_patterns("parity.json", "model_*.onnx"))
    lines: list[str] = []
    records = make_variants(model_dir, optimize=["O2"], quantize=["avx2"], parity_texts=300, echo=lines.append)
    assert all(r.passed for r in records), "\n".join(lines)
    by_name = {r.file_name: r for r in records}
    assert by_name["onnx/model.onnx"].max_abs_diff <= 1e-5 and by_name["onnx/model_O2.onnx"].max_abs_diff <= 1e-5
    fused = by_name["onnx/model_O2.onnx"].created_by["fused_operators"][0]
    assert fused.get("Attention") == 6 and fused.get("EmbedLayerNormalization") == 1, fused
    int8 = by_name["onnx/model_qint8_avx2.onnx"]
    types = _op_types(model_dir / "onnx" / "model_qint8_avx2.onnx")
    assert types.count("MultiHeadAttention") == 6 and "QAttention" not in types and "DynamicQuantizeLinear" not in types
    assert int8.mean_cosine is not None and int8.mean_cosine >= 0.99 and int8.min_cosine >= 0.98  # type: ignore[operator]
    assert (model_dir / "onnx" / "model_qint8_avx2.onnx").stat().st_size < 0.4 * (
        model_dir / "onnx" / "model.onnx").stat().st_size
    stored = json.loads((model_dir / "onnx" / "parity.json").read_text())
    assert set(stored) == set(by_name) and all(v["texts"] == 300 for v in stored.values())
