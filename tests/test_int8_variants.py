"""The near-lossless int8 variant (``--quantize <family>_hq``): smoothed row-wise int8, float32 embedding table.

Unit tests check the smoothing on small graphs against NumPy's float32 product; the fixture test runs
the whole exporter pipeline; the ``real`` test builds all-MiniLM-L6-v2's plain and ``_hq`` int8 files
(on a copy) and compares both with sentence-transformers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the int8 files are built by the exporter (export extra); CI's second stage runs this")

import onnx
from onnx import TensorProto, helper, numpy_helper

import onnx_st
from exporter.quantize import (
    HQ_THRESHOLDS,
    family_file_name,
    hq_thresholds,
    selection_targets,
    split_hq,
)
from exporter.rowwise import quantize_rows, smoothing_scales
from exporter.variants import make_variants, resolve_families
from onnx_st._runtime.variants import choose_file

from .conftest import fixture_dir

HQ = "onnx/model_qint8_avx512_vnni_hq.onnx"
PLAIN = "onnx/model_qint8_avx512_vnni.onnx"


def test_names_and_targets() -> None:
    assert family_file_name("avx2_hq") == "onnx/model_qint8_avx2_hq.onnx"
    assert family_file_name("avx512_vnni_hq") == HQ and family_file_name("avx512_vnni") == PLAIN
    assert split_hq("arm64_hq") == ("arm64", True) and split_hq("arm64") == ("arm64", False)
    with pytest.raises(ValueError, match="_hq"):
        family_file_name("sse4_hq")
    assert hq_thresholds("dense") == HQ_THRESHOLDS and set(hq_thresholds("cross")) == {"score_correlation"}
    plain, near = selection_targets("dense"), selection_targets("dense", hq=True)
    assert all(near[name] > plain[name] for name in plain)


def test_auto_hq_resolves_to_this_cpus_family(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx_st.cpu

    monkeypatch.setattr(onnx_st.cpu, "int8_families", lambda: ["avx512", "avx2"])
    assert resolve_families(["auto_hq", "auto", "avx512_hq"]) == ["avx512_hq", "avx512"]
    monkeypatch.setattr(onnx_st.cpu, "int8_families", list)
    with pytest.raises(ValueError, match="auto_hq"):
        resolve_families(["auto_hq"])


def _norm_matmul(weight: np.ndarray, second: np.ndarray | None = None) -> onnx.ModelProto:
    """x -> LayerNormalization -> MatMul(weight) [-> Relu -> MatMul(second)], one graph output."""
    k = weight.shape[0]
    inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.ones(k, np.float32), "gamma"),
             numpy_helper.from_array(np.zeros(k, np.float32), "beta")]
    nodes = [helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["h"], name="ln", axis=-1),
             helper.make_node("MatMul", ["h", "w"], ["y"], name="mm")]
    out = "y"
    if second is not None:
        inits.append(numpy_helper.from_array(second, "w2"))
        nodes += [helper.make_node("Relu", ["y"], ["r"], name="relu"),
                  helper.make_node("MatMul", ["r", "w2"], ["z"], name="mm2")]
        out = "z"
    width = (second if second is not None else weight).shape[1]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", k])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["n", width])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def _layer_norm(x: np.ndarray) -> np.ndarray:
    return ((x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)).astype(np.float32)


def test_smoothing_scales_follow_smoothquant() -> None:
    rng = np.random.default_rng(0)
    weight, second = rng.normal(size=(16, 8)).astype(np.float32), rng.normal(size=(8, 4)).astype(np.float32)
    model = _norm_matmul(weight, second)
    peaks = {"h": rng.uniform(0.5, 20, 16).astype(np.float32), "r": rng.uniform(0.5, 2, 8).astype(np.float32)}
    scales = smoothing_scales(model, peaks, alpha=0.5)
    assert set(scales) == {"h"}  # the Relu output is not a normalized or attention output
    expected = np.sqrt(peaks["h"].astype(np.float64)) / np.sqrt(np.abs(weight).max(axis=1))
    np.testing.assert_allclose(scales["h"], expected / np.exp(np.log(expected).mean()), rtol=1e-5)
    assert scales["h"].dtype == np.float32 and np.exp(np.log(scales["h"]).mean()) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        smoothing_scales(model, peaks, alpha=1.5)
    with pytest.raises(ValueError, match="channel peaks"):
        smoothing_scales(model, {"h": peaks["h"][:4]})


def test_smoothing_keeps_the_product_and_tames_an_outlying_channel() -> None:
    """One channel 40x larger than the rest: smoothed int8 is closer to the float32 product, and batch-invariant."""
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(64, 32)).astype(np.float32)
    x = rng.normal(size=(48, 64)).astype(np.float32)
    x[:, 5] *= 40.0  # after the norm, channel 5 still dominates every row
    exact = _layer_norm(x) @ weight
    errors = {}
    for smoothed in (False, True):
        model = _norm_matmul(weight)
        peaks = {"h": np.abs(_layer_norm(x)).max(axis=0)}
        quantize_rows(model, smooth=smoothing_scales(model, peaks) if smoothed else None)
        assert any(node.name.endswith("/smoothed") for node in model.graph.node) is smoothed
        got = _run(model, x)
        errors[smoothed] = float(np.abs(got - exact).max())
        np.testing.assert_array_equal(_run(model, x[:1]), got[:1])  # the same bits alone and in a batch
    assert errors[True] < 0.5 * errors[False], errors


def test_bad_smoothing_scales_are_refused() -> None:
    model = _norm_matmul(np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="positive float32"):
        quantize_rows(model, smooth={"h": np.array([1, 0, 1, 1], np.float32)})


def _batch_spread(model: onnx_st.SentenceTransformer, texts: list[str]) -> float:
    alone = np.stack([model.encode([t])[0] for t in texts])
    return max(float(np.abs(model.encode(order, batch_size=size) - alone[[texts.index(t) for t in order]]).max())
               for size in (3, len(texts)) for order in (texts, texts[::-1]))


def test_fixture_pipeline_writes_the_hq_file_with_its_record(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(fixture_dir("dense-mean"), model_dir)
    records = make_variants(model_dir, quantize=["avx512_vnni", "avx512_vnni_hq"], parity_texts=24,
                            echo=lambda _: None)
    by_name = {r.file_name: r for r in records}
    hq = by_name[HQ]
    assert hq.thresholds == HQ_THRESHOLDS and by_name[PLAIN].thresholds != HQ_THRESHOLDS
    settings = hq.created_by["settings"]
    assert settings["batch_invariant"] is True and settings["embeddings"] == "float32"
    assert settings["smoothing"]["inputs"] > 0 and by_name[PLAIN].created_by["settings"]["smoothing"] is None
    assert hq.mean_cosine is not None and hq.mean_cosine >= 0.99, hq.summary()
    model = onnx_st.SentenceTransformer(str(model_dir), model_kwargs={"file_name": HQ})
    assert _batch_spread(model, ["a", "short text", "a much longer sentence with some padding " * 3]) == 0.0
    assert choose_file(model_dir, families=["avx512_vnni"]).file_name != HQ  # auto keeps the plain int8 file


def test_unknown_hq_family_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown variants"):
        make_variants(tmp_path, quantize=["sse4_hq"], echo=lambda _: None)


@pytest.mark.real
def test_minilm_hq_is_nearly_lossless(minilm_onnx_dir: Path, tmp_path: Path) -> None:
    from exporter.corpus import benchmark_sentences

    model_dir = tmp_path / "minilm"
    shutil.copytree(minilm_onnx_dir, model_dir, ignore=shutil.ignore_patterns("parity.json", "model_*.onnx"))
    lines: list[str] = []
    records = make_variants(model_dir, quantize=["avx512_vnni", "avx512_vnni_hq"], parity_texts=300,
                            echo=lines.append)
    by_name = {r.file_name: r for r in records}
    hq, plain = by_name[HQ], by_name[PLAIN]
    assert hq.passed and plain.passed, "\n".join(lines)
    assert hq.min_cosine is not None and plain.min_cosine is not None and hq.min_cosine > plain.min_cosine
    assert hq.created_by["float32_nodes"] == 0, hq.created_by["selection"]
    model = onnx_st.SentenceTransformer(str(model_dir), model_kwargs={"file_name": HQ})
    assert _batch_spread(model, benchmark_sentences(16)) == 0.0
