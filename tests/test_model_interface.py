"""The one interface of the four model classes, which the CLI, the server, jobs and the exporter ask."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from onnx_st.base import model_class
from onnx_st.base.model import BaseModel
from onnx_st.kinds import KINDS
from tests.conftest import ROOT, fixture_dir

FIXTURES = {"dense": "dense-mean", "sparse": "sparse-max-relu", "cross": "cross-3labels",
            "multi-vector": "multi-vector-basic"}
TEXTS = ["hello world", "A short one."]


@pytest.fixture(scope="module", params=sorted(FIXTURES))
def model(request: pytest.FixtureRequest) -> BaseModel:
    return model_class(KINDS[request.param])(str(fixture_dir(FIXTURES[request.param])))


def test_every_kind_implements_the_interface() -> None:
    for kind in KINDS.values():
        cls = model_class(kind)
        assert issubclass(cls, BaseModel) and not cls.__abstractmethods__, cls


def test_job_columns_are_the_kinds_output_columns(model: BaseModel) -> None:
    assert tuple(c.name for c in model.job_columns()) == model.kind.output_columns
    texts = {name: TEXTS for name in model.kind.input_columns}
    result = model.encode_job_batch(texts, batch_size=8, prompt_name=None, normalize=False)
    assert result and all(isinstance(v, np.ndarray) for v in result.values())


def test_labels_and_description(model: BaseModel) -> None:
    described = model.describe()
    if model.kind.scores_pairs:
        assert len(model.labels) == described["num_labels"] == 3 and model.get_embedding_dimension() is None
    else:
        assert model.labels == [] and described["embedding_dimension"] == model.get_embedding_dimension()
    scores = model.similarity_to_source("hello", TEXTS)
    assert len(scores) == len(TEXTS)


def test_the_kind_decides_in_one_place() -> None:
    comparison = re.compile(r"""(==|!=)\s*["'](dense|sparse|cross|multi-vector)["']|"""
                            r"""\bin\s+[\[(]\s*["'](dense|sparse|cross|multi-vector)["']""")
    found, ignores = [], []
    for package in ("onnx_st", "exporter"):
        for path in sorted(Path(ROOT, package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if path.name != "kinds.py":
                found += [f"{path}:{m.group(0)}" for m in comparison.finditer(text)]
            if package == "onnx_st":
                ignores += [str(path)] * text.count("type: ignore[attr-defined]")
    assert len(found) <= 3, found
    assert not ignores, ignores
