"""Router layouts and module weight dtypes, loaded by sentence-transformers and by onnx-st from the same directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import onnx_st
from tests.conftest import fixture_dir

st = pytest.importorskip("sentence_transformers")
torch = pytest.importorskip("torch")

TEXTS = ["hello world", "A short one.", "accents: café, naïve", "the lazy dog " * 30]
DENSE_TYPE = "sentence_transformers.base.modules.dense.Dense"


def close(a: Any, b: Any) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def both(path: Path) -> tuple[Any, onnx_st.SentenceTransformer]:
    return st.SentenceTransformer(str(path), device="cpu"), onnx_st.SentenceTransformer(path)


def same_outputs(theirs: Any, ours: onnx_st.SentenceTransformer) -> None:
    for method in ("encode", "encode_query", "encode_document"):
        expected, got = getattr(theirs, method)(TEXTS), getattr(ours, method)(TEXTS)
        assert got.shape == expected.shape, method
        close(got, expected)
    assert ours.get_embedding_dimension() == theirs.get_embedding_dimension()
    assert sorted(ours.get_model_kwargs()) == sorted(theirs.get_model_kwargs())


def router_copy(tmp_path: Path) -> Path:
    target = tmp_path / "router"
    shutil.copytree(fixture_dir("dense-router"), target)
    return target


def edit_router(path: Path, edit: Any, name: str = "router_config.json") -> None:
    config = json.loads((path / name).read_text())
    edit(config)
    (path / name).write_text(json.dumps(config))


def test_legacy_router_config_json(tmp_path: Path) -> None:
    path = router_copy(tmp_path)
    (path / "router_config.json").rename(path / "config.json")
    same_outputs(*both(path))


def test_routes_of_different_dimensions(tmp_path: Path) -> None:
    path = router_copy(tmp_path)
    torch.manual_seed(0)
    (path / "query_2_Dense").mkdir()
    st.sentence_transformer.modules.Dense(32, 16).save(str(path / "query_2_Dense"))

    def add_dense(config: dict[str, Any]) -> None:
        config["types"]["query_2_Dense"] = DENSE_TYPE
        config["structure"]["query"].append("query_2_Dense")

    edit_router(path, add_dense)
    theirs, ours = both(path)
    same_outputs(theirs, ours)
    assert ours.encode_query(TEXTS).shape == (len(TEXTS), 16)


def test_modality_route_mappings(tmp_path: Path) -> None:
    path = router_copy(tmp_path)

    def map_text(config: dict[str, Any]) -> None:
        config["parameters"].update(default_route="query", route_mappings={"(None, 'text')": "document"})

    edit_router(path, map_text)
    theirs, ours = both(path)
    same_outputs(theirs, ours)
    close(ours.encode(TEXTS, modality="text", task="query"), theirs.encode(TEXTS, modality="text", task="query"))
    close(ours.encode(TEXTS, modality="text"), theirs.encode(TEXTS, modality="text"))


def test_router_after_the_transformer(tmp_path: Path) -> None:
    source = fixture_dir("dense-mean")
    base = st.SentenceTransformer(str(source), device="cpu")
    modules = st.sentence_transformer.modules
    torch.manual_seed(0)
    router = modules.Router({"query": [modules.Pooling(32, "mean")],
                             "document": [modules.Pooling(32, "cls"), modules.Dense(32, 8)]}, default_route="document")
    path = tmp_path / "late-router"
    st.SentenceTransformer(modules=[base[0], router], device="cpu").save(str(path))
    shutil.copytree(source / "onnx", path / "onnx")
    same_outputs(*both(path))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_dense_weights_in_other_dtypes(tmp_path: Path, dtype: Any) -> None:
    from safetensors.torch import load_file, save_file

    path = tmp_path / "dense"
    shutil.copytree(fixture_dir("dense-dense-layer"), path)
    weights = path / "2_Dense" / "model.safetensors"
    save_file({k: v.to(dtype) for k, v in load_file(str(weights)).items()}, str(weights))
    theirs, ours = both(path)
    close(ours.encode(TEXTS), theirs.encode(TEXTS))
