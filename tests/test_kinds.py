"""Model kinds: one detector, and every surface (classes, CLI, server, jobs, exporter) agrees with it."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from onnx_st import (
    ConfigError,
    CrossEncoder,
    InputError,
    MultiVectorEncoder,
    SentenceTransformer,
    SparseEncoder,
    kinds,
)
from onnx_st.base import load_by_kind, model_class
from onnx_st.cli import main as cli_main
from onnx_st.jobs.spec import detect_kind as job_kind
from onnx_st.kinds import KINDS, detect_kind, get_kind

from .conftest import FIXTURES, fixture_dir

FRONT_CLASSES = {"dense": SentenceTransformer, "sparse": SparseEncoder, "cross": CrossEncoder,
                 "multi-vector": MultiVectorEncoder}


def _expected_kind(name: str) -> str:
    """The kind a fixture was built as: the sentence-transformers class that built it (its meta.json)."""
    return get_kind(json.loads((FIXTURES / name / "meta.json").read_text())["model_class"]).name


ALL_FIXTURES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and (p / "meta.json").is_file())


def _without_model_type(name: str, tmp_path: Path) -> Path:
    """A copy of a fixture whose config_sentence_transformers.json says nothing about its kind."""
    target = tmp_path / name
    shutil.copytree(fixture_dir(name), target)
    saved = target / "config_sentence_transformers.json"
    if saved.is_file():
        data = json.loads(saved.read_text())
        data.pop("model_type", None)
        saved.write_text(json.dumps(data))
    return target


def _cli_info(path: Path) -> dict[str, object]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["info", str(path)]) == 0
    return json.loads(out.getvalue())


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_surface_agrees_on_the_kind(name: str, tmp_path: Path) -> None:
    from onnx_st.server.registry import ModelRegistry

    expected = _expected_kind(name)
    for path in (fixture_dir(name), _without_model_type(name, tmp_path)):
        assert detect_kind(path).kind.name == expected, path
        assert job_kind(path) == expected
        assert _cli_info(path)["kind"] == expected
        registry = ModelRegistry({"m": path})
        assert registry.entries["m"].kind.name == expected
        model = load_by_kind(path)
        assert type(model) is FRONT_CLASSES[expected]


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_the_wrong_class_is_refused_with_the_right_one_named(name: str) -> None:
    expected = _expected_kind(name)
    FRONT_CLASSES[expected](fixture_dir(name))
    for kind, cls in FRONT_CLASSES.items():
        if kind == expected:
            continue
        with pytest.raises(ConfigError, match=rf"is a {get_kind(expected).model_type} model .*"
                                              rf"load it with onnx_st\.{get_kind(expected).class_name}"):
            cls(fixture_dir(name))


def test_cli_encode_refuses_a_reranker_and_similarity_scores_its_pairs(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(fixture_dir("cross-1label"))
    assert cli_main(["encode", path, "a text"]) == 2
    assert "CrossEncoder" in capsys.readouterr().err
    assert cli_main(["similarity", path, "--source", "q", "--sentences", "a", "b"]) == 0
    scores = json.loads(capsys.readouterr().out)
    expected = CrossEncoder(path).predict([("q", "a"), ("q", "b")])
    assert scores == [round(float(s), 6) for s in expected]


def test_cli_encode_of_a_sparse_model_gives_sparse_rows(capsys: pytest.CaptureFixture[str]) -> None:
    path = fixture_dir("sparse-max-relu")
    assert cli_main(["encode", str(path), "hello world"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = SparseEncoder(path).encode(["hello world"])[0]
    assert rows == [{"indices": expected.indices.tolist(), "values": expected.values.tolist()}]


def _bare_hf_dir(tmp_path: Path, architecture: str) -> Path:
    target = tmp_path / architecture
    target.mkdir()
    config = json.loads((fixture_dir("sparse-max-relu") / "config.json").read_text())
    config["architectures"] = [architecture]
    (target / "config.json").write_text(json.dumps(config))
    return target


def test_bare_directories_are_decided_by_their_architecture(tmp_path: Path) -> None:
    cross = detect_kind(_bare_hf_dir(tmp_path, "BertForSequenceClassification"))
    assert cross.kind is kinds.CROSS and cross.certain
    mlm = detect_kind(_bare_hf_dir(tmp_path, "BertForMaskedLM"))
    assert mlm.kind is kinds.DENSE and not mlm.certain and kinds.SPARSE in mlm.alternatives
    plain = detect_kind(_bare_hf_dir(tmp_path, "BertModel"))
    assert plain.kind is kinds.DENSE and not plain.certain


def test_colbert_metadata_means_multi_vector(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["HF_ColBERT"]}))
    assert detect_kind(tmp_path).kind is kinds.MULTI_VECTOR  # Stanford ColBERT without its metadata file
    (tmp_path / "artifact.metadata").write_text(json.dumps({"dim": 128}))
    assert detect_kind(tmp_path).kind is kinds.MULTI_VECTOR
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps({"model_type": "ColBERT"}))
    assert detect_kind(tmp_path).kind is kinds.MULTI_VECTOR  # PyLate


@pytest.mark.parametrize("content", [None, "[]", '{"model_type": "Unknown"}', "{not json"])
def test_undecidable_directories_say_what_was_looked_at(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "config_sentence_transformers.json").write_text(content)
    with pytest.raises(ConfigError) as info:
        detect_kind(tmp_path)
    message = str(info.value)
    assert "config_sentence_transformers.json" in message
    if content is None or content == "[]":
        assert "config.json" in message and "expected" in message


def test_kind_names_and_model_types_resolve_to_one_kind() -> None:
    for kind in KINDS.values():
        assert get_kind(kind.name) is kind is get_kind(kind.model_type)
    for name, cls in FRONT_CLASSES.items():
        assert model_class(get_kind(name)) is cls
    with pytest.raises(InputError, match="dense"):
        get_kind("reranker")


def test_exporter_refuses_a_bare_masked_lm_under_auto(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from exporter.export import detect_kind as exporter_kind

    with pytest.raises(ConfigError, match="--kind sparse"):
        exporter_kind(str(_bare_hf_dir(tmp_path, "BertForMaskedLM")))
    for name in ALL_FIXTURES:
        assert exporter_kind(str(fixture_dir(name))) == _expected_kind(name)
