"""CrossEncoder on the tiny seeded fixtures: golden sentence-transformers outputs, options, bad input, layouts."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

import onnx_st
from onnx_st.errors import ConfigError, InputError

from .conftest import fixture_dir, fixture_expected, fixture_inputs

ATOL = 1e-5
IDENTITY = "torch.nn.modules.linear.Identity"
CROSS_FIXTURES = ["cross-1label", "cross-3labels", "cross-1label-legacy"]


def _load(name: str) -> onnx_st.CrossEncoder:
    return onnx_st.CrossEncoder(str(fixture_dir(name)))


def _pairs(name: str) -> list[list[str]]:
    return fixture_inputs(name)["pairs"]


@pytest.fixture(scope="module")
def one() -> onnx_st.CrossEncoder:
    return _load("cross-1label")


@pytest.fixture(scope="module")
def three() -> onnx_st.CrossEncoder:
    return _load("cross-3labels")


@pytest.mark.parametrize("name", CROSS_FIXTURES)
def test_predict_equals_golden(name: str) -> None:
    model, pairs, expected = _load(name), _pairs(name), fixture_expected(name)
    got = model.predict(pairs)
    assert got.dtype == np.float32 and got.shape == expected["predict"].shape
    assert np.abs(got - expected["predict"]).max() <= ATOL
    logits = model.predict(pairs, activation_fn=IDENTITY, batch_size=5)
    assert np.abs(logits - expected["predict_logits"]).max() <= ATOL
    if "predict_softmax" in expected:
        assert np.abs(model.predict(pairs, apply_softmax=True) - expected["predict_softmax"]).max() <= ATOL


@pytest.mark.parametrize("name", ["cross-1label", "cross-1label-legacy"])
def test_rank_equals_golden(name: str) -> None:
    golden = json.loads((fixture_dir(name) / "rank.json").read_text())
    got = _load(name).rank(golden["query"], golden["documents"])
    assert [r["corpus_id"] for r in got] == [r["corpus_id"] for r in golden["result"]]
    assert all(abs(g["score"] - e["score"]) <= ATOL for g, e in zip(got, golden["result"]))
    assert all(isinstance(r["score"], float) and set(r) == {"corpus_id", "score"} for r in got)


def test_rank_options(one: onnx_st.CrossEncoder) -> None:
    docs = fixture_inputs("cross-1label")["rank_documents"]
    full = one.rank("What is the capital of France?", docs, return_documents=True)
    assert [r["text"] for r in full] == [docs[r["corpus_id"]] for r in full]
    top = one.rank("What is the capital of France?", docs, top_k=2)
    assert top == [{"corpus_id": r["corpus_id"], "score": r["score"]} for r in full[:2]]
    assert len(one.rank("q", docs, top_k=100)) == len(docs)
    assert one.rank("q", []) == []
    assert one.rank("q", ["same", "same", "same"])[0]["corpus_id"] == 0  # ties keep document order


def test_shapes_and_output_forms(one: onnx_st.CrossEncoder, three: onnx_st.CrossEncoder) -> None:
    pair = ("A question?", "An answer.")
    assert isinstance(one.predict(pair), np.floating)
    assert one.predict(list(pair)) == one.predict([pair])[0]
    assert three.predict(pair).shape == (3,)
    assert three.predict([pair, pair]).shape == (2, 3)
    assert one.predict(np.array([pair, pair])).shape == (2,)
    for model in (one, three):
        assert model.predict([]).shape == (0,)
        assert model.predict([], convert_to_numpy=False) == []
    listed = three.predict([pair, pair], convert_to_numpy=False)
    assert isinstance(listed, list) and len(listed) == 2 and listed[0].shape == (3,)
    assert one.predict(sentences=[pair]).shape == (1,)  # the pre-v4 keyword


def test_activation_resolution(one: onnx_st.CrossEncoder, three: onnx_st.CrossEncoder) -> None:
    assert one.activation_fn_name == "torch.nn.modules.activation.Sigmoid" and one.num_labels == 1
    assert three.activation_fn_name == IDENTITY and three.num_labels == 3
    pairs, expected = _pairs("cross-1label"), fixture_expected("cross-1label")
    raw = onnx_st.CrossEncoder(str(fixture_dir("cross-1label")), activation_fn="torch.nn.Identity")
    assert np.abs(raw.predict(pairs) - expected["predict_logits"]).max() <= ATOL
    assert np.abs(one.predict(pairs, activation_fn=np.tanh) - np.tanh(expected["predict_logits"])).max() <= ATOL
    with pytest.raises(InputError, match="Unsupported activation"):
        one.predict(pairs, activation_fn="torch.nn.Softplus")


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(fixture_dir(name), target)
    return target


def _edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


def test_legacy_activation_sources(tmp_path: Path) -> None:
    """config.json `sentence_transformers.activation_fn`, else `sbert_ce_default_activation_function`, else Sigmoid."""
    legacy = _copy("cross-1label-legacy", tmp_path)
    assert onnx_st.CrossEncoder(str(legacy)).activation_fn_name == IDENTITY
    _edit_json(legacy / "config.json", sentence_transformers=None,
               sbert_ce_default_activation_function="torch.nn.modules.activation.Tanh")
    assert onnx_st.CrossEncoder(str(legacy)).activation_fn_name.endswith("Tanh")
    _edit_json(legacy / "config.json", sbert_ce_default_activation_function=None)
    model = onnx_st.CrossEncoder(str(legacy))
    logits = fixture_expected("cross-1label-legacy")["predict_logits"]
    assert model.activation_fn_name.endswith("Sigmoid")
    assert np.abs(model.predict(_pairs("cross-1label-legacy")) - 1 / (1 + np.exp(-logits))).max() <= ATOL


def test_activation_precedence_and_untrusted_paths(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = _copy("cross-1label", tmp_path)
    _edit_json(target / "config.json", sentence_transformers={"activation_fn": "torch.nn.modules.activation.Tanh"})
    assert onnx_st.CrossEncoder(str(target)).activation_fn_name.endswith("Sigmoid")  # the ST 6 file wins
    _edit_json(target / "config_sentence_transformers.json", activation_fn="my_package.MyActivation")
    with caplog.at_level(logging.WARNING, logger="onnx_st"):
        assert onnx_st.CrossEncoder(str(target)).activation_fn_name.endswith("Tanh")
    assert "my_package.MyActivation" in caplog.text
    _edit_json(target / "config_sentence_transformers.json", activation_fn="torch.nn.modules.activation.Softplus")
    with pytest.raises(ConfigError, match="Softplus"):
        onnx_st.CrossEncoder(str(target))


def test_constructors_and_save_round_trip(tmp_path: Path, one: onnx_st.CrossEncoder) -> None:
    path = fixture_dir("cross-1label")
    pairs, expected = _pairs("cross-1label"), fixture_expected("cross-1label")["predict"]
    for model in (onnx_st.CrossEncoder.from_dir(path, provider="CPUExecutionProvider"),
                  onnx_st.CrossEncoder.from_pretrained(str(path), local_files_only=True),
                  onnx_st.CrossEncoder(str(path), backend="onnx", device="cpu",
                                       model_kwargs={"file_name": "onnx/model.onnx"}),
                  onnx_st.Reranker(str(path), num_labels=1)):
        assert isinstance(model, onnx_st.CrossEncoder)
        assert np.abs(model.predict(pairs) - expected).max() <= ATOL
    saved = tmp_path / "saved"
    onnx_st.CrossEncoder(str(path), activation_fn="torch.nn.Identity").save_pretrained(saved)
    config = json.loads((saved / "config_sentence_transformers.json").read_text())
    assert config["model_type"] == "CrossEncoder" and config["activation_fn"] == IDENTITY
    reloaded = onnx_st.CrossEncoder(str(saved))
    assert np.abs(reloaded.predict(pairs) - fixture_expected("cross-1label")["predict_logits"]).max() <= ATOL


def test_max_length(one: onnx_st.CrossEncoder) -> None:
    assert one.max_seq_length == 64
    short = onnx_st.CrossEncoder(str(fixture_dir("cross-1label")), max_length=8)
    assert short.max_seq_length == 8
    pairs = [("a question about cats and dogs", "a long answer " * 50), ("short", "pair")]
    tokens = short.tokenizer.encode_batch([tuple(p) for p in pairs])
    assert len(tokens[0].ids) == 8
    assert short.predict(pairs[1]) == pytest.approx(one.predict(pairs[1]), abs=ATOL)
    with pytest.raises(InputError, match="max_length"):
        onnx_st.CrossEncoder(str(fixture_dir("cross-1label")), max_length=10_000)


def test_texts_beyond_max_length_are_truncated(one: onnx_st.CrossEncoder) -> None:
    long_doc = "the cat sleeps on the warm windowsill " * 400
    scores = one.predict([("where is the cat?", long_doc), ("where is the cat?", long_doc + " and more words")])
    assert scores[0] == pytest.approx(scores[1], abs=ATOL)
    flipped = one.predict([(long_doc, long_doc), (long_doc * 2, "x " * 5000)])
    assert np.isfinite(flipped).all()


@pytest.mark.parametrize("bad", [
    "just one string", None, 42, {"q": "d"}, [("q", "d", "extra")], [("q",)], [("q", 3)], [("q", None)],
    [["q", "d"], "loose string"], [("q", b"bytes")],
])
def test_bad_pairs(one: onnx_st.CrossEncoder, bad: object) -> None:
    with pytest.raises(InputError):
        one.predict(bad)


def test_bad_arguments(one: onnx_st.CrossEncoder, three: onnx_st.CrossEncoder) -> None:
    docs = ["a", "b", "c"]
    for top_k in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="top_k"):
            one.rank("q", docs, top_k=top_k)
    with pytest.raises(InputError, match="query"):
        one.rank(["q"], docs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="documents"):
        one.rank("q", "not a list")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="documents"):
        one.rank("q", ["ok", 3])  # type: ignore[list-item]
    with pytest.raises(InputError, match="num_labels=1"):
        three.rank("q", docs)
    with pytest.raises(InputError, match="batch_size"):
        one.predict([("q", "d")], batch_size=0)
    with pytest.raises(InputError, match="additional keyword arguments that this model does not use"):
        one.predict([("q", "d")], not_an_option=True)
    with pytest.raises(InputError, match="num_labels"):
        onnx_st.CrossEncoder(str(fixture_dir("cross-1label")), num_labels=3)


def test_dense_directory_is_not_a_cross_encoder() -> None:
    with pytest.raises(ConfigError, match="is a SentenceTransformer model .*not a CrossEncoder: load it with onnx_st.SentenceTransformer"):
        onnx_st.CrossEncoder(str(fixture_dir("dense-mean")))
