"""Hub resolution, offline, against a local Hugging Face cache layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub.utils import filter_repo_objects

import onnx_st
from onnx_st.errors import ModelNotFoundError
from onnx_st.hub import _CONFIG_PATTERNS, _MODULE_WEIGHTS, onnx_patterns, resolve_model_dir
from onnx_st.model_dir import ModelDir

from .conftest import fixture_dir, fixture_expected, fixture_inputs

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_hub_cache(cache: Path, repo_id: str, source: Path) -> Path:
    """Lay ``source`` out as huggingface_hub stores a downloaded snapshot."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    shutil.copytree(source, snapshot, ignore=shutil.ignore_patterns("expected.npz", "inputs.json", "meta.json"))
    return snapshot


def test_from_pretrained_reads_local_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = make_hub_cache(tmp_path, "acme/tiny-dense", fixture_dir("dense-mean"))
    model = onnx_st.Encoder.from_pretrained("acme/tiny-dense", cache_dir=tmp_path, local_files_only=True)
    assert model.model_dir == snapshot
    texts = fixture_inputs("dense-mean")
    np.testing.assert_allclose(model.encode(texts), fixture_expected("dense-mean")["encode"], atol=1e-5)


def test_drop_in_constructor_reads_local_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    make_hub_cache(tmp_path, "acme/tiny-dense", fixture_dir("dense-mean"))
    model = onnx_st.SentenceTransformer("acme/tiny-dense", backend="onnx", cache_folder=str(tmp_path),
                                        model_kwargs={"provider": "CPUExecutionProvider",
                                                      "file_name": "onnx/model.onnx"})
    assert model.get_backend() == "onnx"


def test_missing_repo_in_cache_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="acme/absent"):
        resolve_model_dir("acme/absent", cache_dir=tmp_path, local_files_only=True)


def test_missing_local_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not found"):
        onnx_st.SentenceTransformer(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError):  # the error tree also speaks the builtin's language
        onnx_st.Encoder.from_dir(tmp_path / "nope")


def test_only_needed_files_are_fetched(tmp_path: Path) -> None:
    """Configs, tokenizer, the chosen ONNX file and module weights; never the torch weights."""
    snapshot = make_hub_cache(tmp_path, "acme/tiny-dense", fixture_dir("dense-dense-layer"))
    repo_files = ["config.json", "modules.json", "tokenizer.json", "model.safetensors", "pytorch_model.bin",
                  "onnx/model.onnx", "onnx/model_O4.onnx", "onnx/model_qint8_avx2.onnx", "openvino/model.xml",
                  "2_Dense/config.json", "2_Dense/model.safetensors", "2_Dense/pytorch_model.bin",
                  "1_Pooling/config.json", "README.md"]
    first = set(filter_repo_objects(repo_files, allow_patterns=_CONFIG_PATTERNS))
    planned = onnx_patterns(ModelDir.read(snapshot), None)
    second = set(filter_repo_objects(repo_files, allow_patterns=planned + _MODULE_WEIGHTS))
    fetched = first | second
    assert {"onnx/model.onnx", "2_Dense/model.safetensors", "tokenizer.json", "modules.json"} <= fetched
    assert not fetched & {"model.safetensors", "pytorch_model.bin", "2_Dense/pytorch_model.bin",
                          "onnx/model_O4.onnx", "onnx/model_qint8_avx2.onnx", "openvino/model.xml"}
    chosen = set(filter_repo_objects(repo_files,
                                     allow_patterns=onnx_patterns(ModelDir.read(snapshot), "onnx/model_O4.onnx")))
    assert chosen == {"onnx/model_O4.onnx"}


def test_auto_fetches_every_onnx_file_and_the_parity_records(tmp_path: Path) -> None:
    """``file_name="auto"`` chooses among the files with their records, so it needs all of them."""
    snapshot = make_hub_cache(tmp_path, "acme/tiny-auto", fixture_dir("dense-mean"))
    repo_files = ["onnx/model.onnx", "onnx/model_O2.onnx", "onnx/model_qint8_avx2.onnx", "onnx/parity.json",
                  "onnx/model_fast.onnx_data", "model.safetensors", "openvino/model.xml"]
    chosen = set(filter_repo_objects(repo_files, allow_patterns=onnx_patterns(ModelDir.read(snapshot), "auto")))
    assert chosen == {"onnx/model.onnx", "onnx/model_O2.onnx", "onnx/model_qint8_avx2.onnx", "onnx/parity.json",
                      "onnx/model_fast.onnx_data"}


def serve_repo(monkeypatch: pytest.MonkeyPatch, repo_id: str, source: Path) -> list[str]:
    """A Hub that holds ``source`` as ``repo_id`` and, like ``snapshot_download``, puts only the files that
    ``allow_patterns`` match into a local cache snapshot. Returns the repository's file names."""
    import huggingface_hub

    repo_files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())

    def snapshot_download(*, repo_id: str, allow_patterns: list[str], cache_dir: str | Path, **_: object) -> str:
        snapshot = Path(cache_dir) / ("models--" + repo_id.replace("/", "--")) / "snapshots" / COMMIT
        for name in filter_repo_objects(repo_files, allow_patterns=allow_patterns):
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, snapshot / name)
        return str(snapshot)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return repo_files


def test_a_legacy_router_repo_in_a_local_hub_cache_plans_its_route_files(tmp_path: Path) -> None:
    """A Router saved by older sentence-transformers keeps its config in ``config.json``: its route folders
    are planned from it as from ``router_config.json``."""
    from .test_model_dir import legacy_router_copy

    legacy = legacy_router_copy("sparse-inference-free", tmp_path / "source")
    snapshot = make_hub_cache(tmp_path / "cache", "acme/legacy-router", legacy)
    repo_files = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    planned = set(filter_repo_objects(repo_files, allow_patterns=onnx_patterns(ModelDir.read(snapshot), None)))
    assert planned == {"document_0_MLMTransformer/onnx/model.onnx"}
    model = onnx_st.SparseEncoder("acme/legacy-router", cache_folder=str(tmp_path / "cache"), local_files_only=True)
    assert model.model_dir == snapshot


def test_a_legacy_router_repo_loads_with_its_route_onnx_files_fetched(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_model_dir import legacy_router_copy

    legacy = legacy_router_copy("sparse-inference-free", tmp_path / "source")
    repo_files = serve_repo(monkeypatch, "acme/legacy-router", legacy)
    model = onnx_st.SparseEncoder("acme/legacy-router", cache_folder=str(tmp_path / "cache"))
    fetched = {p.relative_to(model.model_dir).as_posix() for p in model.model_dir.rglob("*") if p.is_file()}
    assert "config.json" in fetched and "document_0_MLMTransformer/onnx/model.onnx" in fetched
    assert fetched < set(repo_files)
    texts = list(fixture_inputs("sparse-inference-free"))
    keep = np.array([bool(t.strip()) for t in texts])
    got = model.encode_document(texts).to_dense()
    np.testing.assert_allclose(got[keep], fixture_expected("sparse-inference-free")["encode_document"][keep],
                               rtol=1e-4, atol=1e-4)
