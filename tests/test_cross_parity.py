"""Parity of the reranker with sentence-transformers' CrossEncoder on real weights (needs the export extra).

The model is all-MiniLM-L6-v2's real encoder under a seeded classification head (see
:mod:`tools.reranker_models`), with one and with three labels, max length 128.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import onnx_st
from exporter.corpus import sample_pairs, sample_texts

pytestmark = pytest.mark.real

ATOL = 1e-5
PAIRS: list[tuple[str, str]] = sample_pairs(500, seed=11)
_LONG = sample_texts(60, seed=12, long_fraction=1.0)
PAIRS += [(d, q) for q, d in PAIRS[:80]]  # the long text first: truncation trims the first segment
PAIRS += list(zip(_LONG[:30], _LONG[30:]))  # both segments long
PAIRS += [("", ""), ("a", ""), ("", "b"), ("UPPER Case", "lower case"),
          ("Ünïcödé café naïve Zürich 東京 🙂?", "x " * 3000)]
QUERIES = [" ".join(t.split()[:10]) for t in sample_texts(10, seed=13, long_fraction=0.0)]
DOCUMENTS = sample_texts(50, seed=14, long_fraction=0.4)


@pytest.fixture(scope="module", params=[1, 3], ids=["1label", "3labels"])
def models(request: pytest.FixtureRequest) -> tuple[Any, onnx_st.CrossEncoder, Path]:
    """(sentence-transformers CrossEncoder, onnx-st CrossEncoder, exported directory)."""
    from sentence_transformers import CrossEncoder

    from tools.reranker_models import minilm_reranker

    _, exported = minilm_reranker(request.param)
    return CrossEncoder(str(exported), device="cpu"), onnx_st.CrossEncoder(str(exported)), exported


def _identity() -> Any:
    import torch

    return torch.nn.Identity()


def test_configuration_matches(models: tuple[Any, onnx_st.CrossEncoder, Path]) -> None:
    reference, ours, _ = models
    assert ours.num_labels == reference.num_labels
    assert ours.max_seq_length == reference.max_seq_length == 128
    activation = type(reference.activation_fn)
    assert ours.activation_fn_name == f"{activation.__module__}.{activation.__name__}"


def test_logits_equal_sentence_transformers(models: tuple[Any, onnx_st.CrossEncoder, Path]) -> None:
    reference, ours, _ = models
    tokens = [len(reference.tokenizer(a, b)["input_ids"]) for a, b in PAIRS]
    assert len(PAIRS) >= 600 and sum(n > 128 for n in tokens) >= 250, "pairs must exercise truncation"
    expected = reference.predict(PAIRS, activation_fn=_identity(), batch_size=32)
    got = ours.predict(PAIRS, activation_fn="torch.nn.Identity", batch_size=32)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.abs(got - expected).max() <= ATOL
    assert float(np.std(got)) > 0.1, "the seeded head must spread the scores"


def test_predict_options_equal_sentence_transformers(models: tuple[Any, onnx_st.CrossEncoder, Path]) -> None:
    reference, ours, _ = models
    pairs = PAIRS[:96] + PAIRS[500:532]  # both orders of short query and long document
    assert np.abs(ours.predict(pairs) - reference.predict(pairs)).max() <= ATOL
    assert np.abs(ours.predict(pairs, apply_softmax=True) - reference.predict(pairs, apply_softmax=True)).max() <= ATOL
    assert np.abs(ours.predict(pairs, batch_size=7) - reference.predict(pairs, batch_size=7)).max() <= ATOL
    kwargs = {"prompt": "query: "}
    assert np.abs(ours.predict(pairs, **kwargs) - reference.predict(pairs, **kwargs)).max() <= ATOL
    one_ours, one_ref = ours.predict(PAIRS[0]), reference.predict(PAIRS[0])
    assert np.shape(one_ours) == np.shape(one_ref) and np.abs(one_ours - one_ref).max() <= ATOL
    listed = ours.predict(pairs[:5], convert_to_numpy=False)
    assert isinstance(listed, list) and len(listed) == 5
    assert np.shape(ours.predict([])) == np.shape(reference.predict([])) == (0,)


def test_rank_order_equal_sentence_transformers(models: tuple[Any, onnx_st.CrossEncoder, Path]) -> None:
    """10 queries x 50 documents (40% longer than the max length): 500 ranked pairs."""
    reference, ours, _ = models
    if ours.num_labels != 1:
        with pytest.raises(onnx_st.InputError, match="num_labels=1"):
            ours.rank(QUERIES[0], DOCUMENTS)
        return
    for query in QUERIES:
        expected = reference.rank(query, DOCUMENTS, return_documents=True)
        got = ours.rank(query, DOCUMENTS, return_documents=True)
        assert [r["corpus_id"] for r in got] == [r["corpus_id"] for r in expected], query
        assert [r["text"] for r in got] == [r["text"] for r in expected]
        assert max(abs(g["score"] - e["score"]) for g, e in zip(got, expected)) <= ATOL
    top, want = (m.rank(QUERIES[0], DOCUMENTS[:10], top_k=3) for m in (ours, reference))
    assert [r["corpus_id"] for r in top] == [r["corpus_id"] for r in want]
    assert ours.rank(QUERIES[0], []) == reference.rank(QUERIES[0], []) == []


def test_legacy_layout_equal_sentence_transformers(models: tuple[Any, onnx_st.CrossEncoder, Path],
                                                   tmp_path: Path) -> None:
    """A directory as older releases wrote it: no modules.json, the activation in config.json."""
    from sentence_transformers import CrossEncoder

    _, _, exported = models
    legacy = tmp_path / "legacy"
    shutil.copytree(exported, legacy)
    for name in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
        (legacy / name).unlink()
    config = json.loads((legacy / "config.json").read_text())
    config["sentence_transformers"] = {"activation_fn": "torch.nn.modules.activation.Tanh"}
    (legacy / "config.json").write_text(json.dumps(config))
    reference, ours = CrossEncoder(str(legacy), device="cpu"), onnx_st.CrossEncoder(str(legacy))
    assert ours.max_seq_length == reference.max_seq_length and ours.activation_fn_name.endswith("Tanh")
    pairs = PAIRS[:100] + PAIRS[500:540]
    assert np.abs(ours.predict(pairs) - reference.predict(pairs)).max() <= ATOL
