"""ModelDir: one reader of a model directory for hub planning, kind detection, export on load and the loaders."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from huggingface_hub.utils import filter_repo_objects

from onnx_st import ConfigError, SentenceTransformer, SparseEncoder
from onnx_st._runtime import config
from onnx_st._runtime.session import resolve_onnx_file
from onnx_st.base import model_class
from onnx_st.export_hook import missing_onnx_files
from onnx_st.hub import onnx_patterns
from onnx_st.kinds import detect_kind, transformer_folders
from onnx_st.model_dir import ModelDir

from .conftest import FIXTURES, fixture_dir, fixture_expected, fixture_inputs

ALL_FIXTURES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and (p / "meta.json").is_file())
ROUTER_FIXTURES = ["dense-router", "sparse-inference-free"]


def legacy_router_copy(name: str, target: Path) -> Path:
    """A copy of a Router fixture saved as older sentence-transformers saved a Router: its config in the
    Router folder's ``config.json`` (no ``router_config.json``)."""
    shutil.copytree(fixture_dir(name), target)
    for router in ModelDir.read(target).routers.values():
        assert router.file.name == "router_config.json"
        assert not router.file.with_name("config.json").exists()
        router.file.rename(router.file.with_name("config.json"))
    return target


def _listing(root: Path) -> ModelDir:
    """The directory as a Hub listing sees it: file names and a reader of its JSON files."""
    files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]

    def read(name: str) -> Any:
        path = root / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    return ModelDir.from_listing(files, read, root)


class ReadLog:
    """Every path the one JSON reader parses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[Path] = []
        original = config.read_json_value

        def record(path: Path, **kwargs: Any) -> Any:
            self.paths.append(Path(path))
            return original(path, **kwargs)
        monkeypatch.setattr(config, "read_json_value", record)

    def twice(self) -> dict[str, int]:
        return {str(p): n for p, n in Counter(self.paths).items() if n > 1}


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_a_local_load_reads_each_json_file_once(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    source = fixture_dir(name)
    kind = detect_kind(source).kind
    log = ReadLog(monkeypatch)
    model_class(kind)(str(source))
    assert log.paths, "the load read no JSON file through the reader"
    if (source / "modules.json").is_file():
        assert source / "modules.json" in log.paths
    assert not log.twice()


def test_a_legacy_router_and_an_auto_file_choice_read_each_file_once(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    legacy = legacy_router_copy("sparse-inference-free", tmp_path / "legacy")
    auto = tmp_path / "auto"
    shutil.copytree(fixture_dir("dense-mean"), auto)
    (auto / "onnx" / "parity.json").write_text(json.dumps({"onnx/model.onnx": {"passed": True, "texts": 3}}))
    log = ReadLog(monkeypatch)
    SparseEncoder(str(legacy))
    SentenceTransformer(str(auto), model_kwargs={"file_name": "auto"})
    assert legacy / "config.json" in log.paths and auto / "onnx" / "parity.json" in log.paths
    assert not log.twice()


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_kind_detection_transformer_folders_and_hub_planning_agree(name: str) -> None:
    source = fixture_dir(name)
    local, listing = ModelDir.read(source), _listing(source)
    kind = detect_kind(source).kind
    assert detect_kind(local).kind is kind and detect_kind(listing).kind is kind
    folders = transformer_folders(source)
    assert folders == list(local.transformer_folders) == list(listing.transformer_folders)
    assert local.module_types == listing.module_types
    assert onnx_patterns(local, None) == onnx_patterns(listing, None)
    repo_files = sorted(listing.listing or ())
    fetched = set(filter_repo_objects(repo_files, allow_patterns=onnx_patterns(listing, None)))
    for folder in folders:
        assert local.onnx_files(folder) == listing.onnx_files(folder)
        graph = resolve_onnx_file(source / folder if folder else source).relative_to(source).as_posix()
        assert graph in fetched, (folder, sorted(fetched))
    assert not missing_onnx_files(local, None)


@pytest.mark.parametrize("name", ROUTER_FIXTURES)
def test_a_legacy_router_config_is_read_as_router_config_json(name: str, tmp_path: Path) -> None:
    current, legacy = ModelDir.read(fixture_dir(name)), ModelDir.read(legacy_router_copy(name, tmp_path / name))
    assert [r.file.name for r in legacy.routers.values()] == ["config.json"]
    assert [(r.types, r.structure, r.parameters) for r in legacy.routers.values()] == \
        [(r.types, r.structure, r.parameters) for r in current.routers.values()]
    assert legacy.transformer_folders == current.transformer_folders
    assert len(current.transformer_folders) >= 1 and any(f for f in current.transformer_folders)
    assert detect_kind(legacy).kind is detect_kind(current).kind


def test_a_legacy_router_loads_with_its_routes(tmp_path: Path) -> None:
    model = SparseEncoder(str(legacy_router_copy("sparse-inference-free", tmp_path / "legacy")))
    texts = list(fixture_inputs("sparse-inference-free"))
    expected = fixture_expected("sparse-inference-free")
    keep = np.array([bool(t.strip()) for t in texts])
    for method in ("encode_query", "encode_document"):
        got = getattr(model, method)(texts).to_dense()
        np.testing.assert_allclose(got[keep], expected[method][keep], rtol=1e-4, atol=1e-4)


def test_json_is_parsed_once_and_paths_stay_inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "model"
    shutil.copytree(fixture_dir("dense-router"), source)
    files = ModelDir.read(source)
    log = ReadLog(monkeypatch)
    assert files.json("modules.json") is files.json("modules.json")
    assert files.json("absent.json") is None and files.json("absent.json") is None
    assert log.paths == [source / "modules.json", source / "absent.json"]
    with pytest.raises(ConfigError, match="inside the model directory"):
        files.json("../outside.json")
    router = json.loads((source / "router_config.json").read_text())
    router["types"]["../escape"] = router["types"].popitem()[1]
    (source / "router_config.json").write_text(json.dumps(router))
    with pytest.raises(ConfigError, match="unsafe module folder '../escape'"):
        transformer_folders(ModelDir.read(source))


def test_a_directory_without_modules_json_is_one_transformer_at_its_root() -> None:
    files = ModelDir.read(fixture_dir("cross-1label-legacy"))
    assert files.modules is None and files.transformer_folders == ("",) and files.routers == {}
    assert "onnx/model.onnx" in files.onnx_files("")
