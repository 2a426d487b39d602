"""The declared module contract: every module of every fixture is a Module, input modules are InputModules,
Routers and fused heads name what they hold, budgets reach every module, configs round-trip through save."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import onnx_st
from onnx_st.errors import ConfigError
from onnx_st.modules import (
    Dense,
    InputModule,
    LoadContext,
    Module,
    Normalize,
    Pooling,
    SpladeMLM,
    SpladePooling,
    Transformer,
    walk,
)
from onnx_st.options import RuntimeOptions

from .conftest import FIXTURES, fixture_dir

KINDS = {"dense": onnx_st.SentenceTransformer, "sparse": onnx_st.SparseEncoder, "cross": onnx_st.CrossEncoder}
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name.split("-")[0] in KINDS)


def _load(name: str, **kwargs: object) -> onnx_st.SentenceTransformer:
    return KINDS[name.split("-")[0]](str(fixture_dir(name)), **kwargs)  # type: ignore[return-value]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_module_declares_the_contract(name: str) -> None:
    model = _load(name)
    modules = list(walk(model.modules))
    assert all(isinstance(m, Module) for m in modules)
    assert isinstance(model.modules[0], InputModule)
    first = model.modules[0]
    assert model.max_seq_length == first.max_seq_length
    assert (model.tokenizer is None) == (first.tokenizer is None)
    for module in modules:
        assert set(module.get_config_dict()) == set(module.config_keys)
        for inner in module.submodules():
            assert inner in modules


@pytest.mark.parametrize("name", ["dense-router", "sparse-inference-free", "sparse-max-relu"])
def test_budgets_reach_every_module_through_apply_options(name: str) -> None:
    model = _load(name, max_batch_tokens=11)
    transformers = [m for m in walk(model.modules) if isinstance(m, Transformer)]
    assert transformers and all(t.max_batch_tokens == 11 for t in transformers)
    model.max_batch_tokens = 23
    assert all(t.max_batch_tokens == 23 for t in transformers)
    if isinstance(model, onnx_st.SparseEncoder):
        heads = [m for m in walk(model.modules) if isinstance(m, SpladeMLM)]
        assert heads and all(h.logits_budget_mib == model.options.logits_budget_mib for h in heads)
        modules_before = list(walk(model.modules))
        model.logits_budget_mib = 0.25
        assert all(h.logits_budget_mib == 0.25 for h in heads)
        assert list(walk(model.modules)) == modules_before  # nothing rebuilt or rewritten


@pytest.mark.parametrize(("module", "loader"), [
    (Pooling(8, ("mean", "max"), include_prompt=False), Pooling.load),
    (Normalize("token_embeddings"), Normalize.load),
    (SpladePooling("sum", "log1p_relu", 30), SpladePooling.load),
    (Dense(np.arange(12, dtype=np.float32).reshape(3, 4), np.ones(3, np.float32),
           "torch.nn.modules.activation.Tanh"), Dense.load),
])
def test_save_round_trips(tmp_path: Path, module: Module, loader: object) -> None:
    module.save(tmp_path / "m")
    ctx = LoadContext(tmp_path, RuntimeOptions())
    again = loader(tmp_path / "m", ctx)  # type: ignore[operator]
    assert json.dumps(again.get_config_dict()) == json.dumps(module.get_config_dict())
    features = {"sentence_embedding": np.ones((2, 4), np.float32), "token_embeddings": np.ones((2, 3, 8), np.float32),
                "attention_mask": np.ones((2, 3), np.int64)}
    if not isinstance(module, SpladePooling):  # it consumes its input in place
        for key, value in module.forward(dict(features)).items():
            np.testing.assert_array_equal(value, again.forward(dict(features))[key])


@pytest.mark.parametrize(("fixture", "file", "change", "match"), [
    ("dense-mean", "sentence_bert_config.json", {"module_output_name": "hidden"}, "Pooling reads 'token_embeddings'"),
    ("sparse-max-relu", "sentence_bert_config.json", {"module_output_name": "x"}, "SpladePooling reads"),
    ("dense-dense-layer", "2_Dense/config.json", {"module_input_name": "nowhere"}, "Dense reads 'nowhere'"),
])
def test_a_module_reading_a_feature_nobody_writes(tmp_path: Path, fixture: str, file: str, change: dict[str, str],
                                                  match: str) -> None:
    path = tmp_path / fixture
    shutil.copytree(fixture_dir(fixture), path)
    data = json.loads((path / file).read_text())
    (path / file).write_text(json.dumps({**data, **change}))
    with pytest.raises(ConfigError, match=match):
        KINDS[fixture.split("-")[0]](str(path))
