"""A model without ONNX file is exported on first load when the export extra is installed, as sentence-transformers does.

The fixtures are copied without their ``onnx/`` folders; the loaded models must give the golden
outputs sentence-transformers computed when the fixtures were built. Tests that export need torch
(``importorskip``); the error without the extra runs in the runtime-only stage too.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from huggingface_hub.utils import filter_repo_objects

from onnx_st.base import model_class
from onnx_st.errors import InputError, ModelLoadError, ModelNotFoundError
from onnx_st.export_hook import EXPORT_CACHE_ENV, missing_onnx_files, split_export
from onnx_st.hub import _TORCH_WEIGHTS
from onnx_st.kinds import detect_kind, get_kind
from onnx_st.modules.base import walk
from onnx_st.modules.transformer import Transformer

from .conftest import ROOT, fixture_dir, fixture_expected, fixture_inputs
from .test_hub import make_hub_cache

ATOL = 1e-4  # the fixtures' own tolerance (ONNX graph vs PyTorch)
# What `pip install onnx-st` lacks: the export extra's packages cannot be imported.
RUNTIME_ONLY = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "sentence_transformers", "onnx", "optimum"):
            raise ImportError("not installed: " + name)
sys.meta_path.insert(0, _Block())
"""


def without_onnx(name: str, target: Path) -> Path:
    """A copy of a fixture without any ONNX file (nor golden outputs)."""
    shutil.copytree(fixture_dir(name), target, ignore=shutil.ignore_patterns(
        "onnx", "*.onnx", "expected.npz", "inputs.json", "meta.json"))
    return target


def outputs(model: Any, name: str) -> np.ndarray:
    """The fixture's main output: dense ``encode``, sparse ``encode`` as dense rows, cross ``predict``,
    multi-vector ``encode`` token vectors stacked."""
    kind = detect_kind(fixture_dir(name)).kind.name
    if kind == "cross":
        return np.asarray(model.predict(fixture_inputs(name)["pairs"]))
    got = model.encode(list(fixture_inputs(name)))
    if kind == "multi-vector":  # token vectors of every text, stacked as the golden file stores them
        return np.concatenate(got)
    return np.asarray(got.to_dense() if kind == "sparse" else got)


def assert_golden(got: np.ndarray, name: str, atol: float = ATOL) -> None:
    """Equal to sentence-transformers' golden outputs (sparse: on non-empty texts, as tests/test_sparse.py)."""
    expected = fixture_expected(name)["predict" if "cross" in name else "encode"]
    if "sparse" in name:
        keep = np.array([bool(t.strip()) for t in fixture_inputs(name)])
        got, expected = got[keep], expected[keep]
    np.testing.assert_allclose(got, expected, atol=atol)


@pytest.mark.parametrize("name", ["dense-mean", "sparse-inference-free", "cross-1label", "multi-vector-basic"])
def test_each_kind_exports_on_first_load_and_saves(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv(EXPORT_CACHE_ENV, str(tmp_path / "exports"))
    source = without_onnx(name, tmp_path / "src")
    kind = detect_kind(source).kind
    assert missing_onnx_files(source, None)
    with caplog.at_level(logging.INFO, logger="onnx_st.export_hook"):
        model = model_class(kind)(str(source), backend="onnx")
    assert model.model_dir.parent == tmp_path / "exports"
    assert "exporting" in caplog.text and "save_pretrained" in caplog.text
    assert_golden(outputs(model, name), name)
    committed = model_class(kind)(str(fixture_dir(name)))  # the fixture's own ONNX files
    np.testing.assert_allclose(outputs(model, name), outputs(committed, name), atol=1e-5)
    assert not list(source.rglob("*.onnx")), "the source directory is never written to"

    model.save_pretrained(tmp_path / "saved")
    reloaded = model_class(kind)(str(tmp_path / "saved"), backend="onnx", local_files_only=True,
                                model_kwargs={"export": False})
    np.testing.assert_allclose(outputs(reloaded, name), outputs(model, name), atol=1e-6)
    transformers = [t for t in walk(reloaded.modules) if isinstance(t, Transformer)]
    for folder in {str(t.session.path.parents[1].relative_to(reloaded.model_dir)) for t in transformers}:
        record = json.loads((tmp_path / "saved" / folder / "onnx" / "parity.json").read_text())["onnx/model.onnx"]
        assert record["passed"] is True and record["created_by"]["method"] == "export on load"

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="onnx_st.export_hook"):
        again = model_class(kind)(str(source))
    assert again.model_dir == model.model_dir and "earlier load" in caplog.text, "a second load reuses the export"


def test_export_flag_forces_or_forbids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv(EXPORT_CACHE_ENV, str(tmp_path / "exports"))
    cls = model_class(get_kind("dense"))
    with pytest.raises(ModelNotFoundError, match=r"onnx/model\.onnx"):
        cls(str(without_onnx("dense-mean", tmp_path / "src")), model_kwargs={"export": False})
    assert not (tmp_path / "exports").exists()
    complete = tmp_path / "complete"
    shutil.copytree(fixture_dir("dense-mean"), complete)
    assert cls(str(complete)).model_dir == complete  # the file is there: no export
    forced = cls.from_pretrained(complete, export=True, local_files_only=True)
    assert forced.model_dir.parent == tmp_path / "exports"
    first_export = (forced.model_dir / "onnx" / "model.onnx").stat().st_mtime_ns
    again = cls(str(complete), model_kwargs={"export": True, "file_name": "onnx/model.onnx"})
    assert (again.model_dir / "onnx" / "model.onnx").stat().st_mtime_ns != first_export, "export=True is fresh"
    assert_golden(again.encode(list(fixture_inputs("dense-mean"))), "dense-mean", atol=1e-5)


def test_failed_export_is_a_load_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv(EXPORT_CACHE_ENV, str(tmp_path / "exports"))
    source = without_onnx("dense-mean", tmp_path / "src")
    (source / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match="onnx-st-export") as caught:
        model_class(get_kind("dense"))(str(source))
    assert caught.value.__cause__ is not None
    assert not list((tmp_path / "exports").iterdir()), "a failed export leaves no folder behind"


def test_named_variant_is_not_exported_and_export_flag_is_checked(tmp_path: Path) -> None:
    source = without_onnx("dense-mean", tmp_path / "src")
    cls = model_class(get_kind("dense"))
    with pytest.raises(ModelNotFoundError, match=r"model_O2\.onnx"):  # the exporter does not write variants
        cls(str(source), model_kwargs={"file_name": "onnx/model_O2.onnx"})
    with pytest.raises(InputError, match="export=True writes onnx/model.onnx"):
        cls(str(source), model_kwargs={"file_name": "onnx/model_O2.onnx", "export": True})
    with pytest.raises(InputError, match="export"):
        split_export({"export": "yes"})
    assert split_export({"export": None, "provider": "CPUExecutionProvider"}) == (
        {"provider": "CPUExecutionProvider"}, None)


def test_hub_repo_without_onnx_exports_outside_the_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.delenv(EXPORT_CACHE_ENV, raising=False)  # then a cache_folder holds the exports
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = make_hub_cache(tmp_path / "hub", "acme/tiny-dense-no-onnx", without_onnx("dense-mean", tmp_path / "s"))
    cls = model_class(get_kind("dense"))
    model = cls.from_pretrained("acme/tiny-dense-no-onnx", cache_dir=tmp_path / "hub", local_files_only=True,
                                provider="CPUExecutionProvider", file_name="onnx/model.onnx")
    assert model.model_dir.parent == tmp_path / "hub" / "onnx-st-exports"
    assert not (snapshot / "onnx").exists(), "a Hub snapshot is never written to"
    assert_golden(model.encode(list(fixture_inputs("dense-mean"))), "dense-mean", atol=1e-5)


def test_export_fetches_the_safetensors_weights_only() -> None:
    repo_files = ["model.safetensors", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
                  "query_0_Transformer/model.safetensors", "pytorch_model.bin", "onnx/model.onnx", "tf_model.h5"]
    assert set(filter_repo_objects(repo_files, allow_patterns=_TORCH_WEIGHTS)) == {
        "model.safetensors", "model-00001-of-00002.safetensors", "query_0_Transformer/model.safetensors"}


def test_without_the_export_extra_the_error_says_what_to_install(tmp_path: Path) -> None:
    """Runs where torch is absent too (the runtime-only CI stage): the extra's imports are blocked."""
    source = without_onnx("dense-mean", tmp_path / "src")
    code = RUNTIME_ONLY + f"""
import onnx_st
try:
    onnx_st.SentenceTransformer({str(source)!r}, backend="onnx")
except onnx_st.ModelNotFoundError as exc:
    print(exc)
print("loaded:", sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules))
"""
    env_cache = tmp_path / "exports"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**_env(), EXPORT_CACHE_ENV: str(env_cache)})
    message = run.stdout
    assert f"No ONNX file onnx/model.onnx in {source}" in message, run.stdout + run.stderr
    assert "pip install 'onnx-st[export]'" in message and f"onnx-st-export {source} OUTPUT_DIR" in message
    assert "torch" in message  # the missing package is named
    assert message.rstrip().endswith("loaded: []") and not env_cache.exists()


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}
