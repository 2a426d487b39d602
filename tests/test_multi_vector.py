"""MultiVectorEncoder on the tiny multi-vector fixtures: golden outputs of sentence-transformers, forms, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from onnx_st import ConfigError, InputError, MultiVectorEncoder
from onnx_st.modules.multi_vector_mask import MultiVectorMask
from onnx_st.modules.token_pooling import HierarchicalTokenPooling

from .conftest import fixture_dir, fixture_expected, fixture_inputs, fixture_names

NAMES = fixture_names("multi-vector-")
ATOL = 1e-4  # the fixtures' own tolerance (ONNX graph vs PyTorch)


def _split(expected: dict[str, np.ndarray], key: str) -> list[np.ndarray]:
    return np.split(expected[key], np.cumsum(expected[f"{key}_lengths"])[:-1])


@pytest.fixture(scope="module", params=NAMES)
def loaded(request: pytest.FixtureRequest) -> tuple[str, MultiVectorEncoder]:
    return request.param, MultiVectorEncoder(str(fixture_dir(request.param)))


def test_fixtures_present() -> None:
    assert NAMES == ["multi-vector-basic", "multi-vector-expansion", "multi-vector-pooling", "multi-vector-pylate",
                     "multi-vector-stanford"]


@pytest.mark.parametrize("method", ["encode", "encode_query", "encode_document"])
def test_golden_token_vectors(loaded: tuple[str, MultiVectorEncoder], method: str) -> None:
    name, model = loaded
    got = getattr(model, method)(fixture_inputs(name), batch_size=5)
    want = _split(fixture_expected(name), method)
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, atol=ATOL)


def test_golden_per_call_token_pooling(loaded: tuple[str, MultiVectorEncoder]) -> None:
    name, model = loaded
    got = model.encode_document(fixture_inputs(name), token_pooling=HierarchicalTokenPooling(pool_factor=2.0))
    want = _split(fixture_expected(name), "encode_document_pooled")
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=ATOL)


def test_golden_maxsim(loaded: tuple[str, MultiVectorEncoder]) -> None:
    name, model = loaded
    texts, expected = fixture_inputs(name), fixture_expected(name)
    queries, documents = model.encode_query(texts), model.encode_document(texts)
    np.testing.assert_allclose(model.similarity(queries, documents), expected["similarity"], rtol=1e-5, atol=ATOL)
    np.testing.assert_allclose(model.similarity(queries, documents, chunk_elements=64), expected["similarity"],
                               rtol=1e-5, atol=ATOL)
    np.testing.assert_allclose(model.similarity_pairwise(queries, documents), expected["similarity_pairwise"],
                               rtol=1e-5, atol=ATOL)
    model.similarity_fn_name = "meanmaxsim"
    try:
        np.testing.assert_allclose(model.similarity(queries, documents), expected["similarity_meanmaxsim"],
                                   rtol=1e-5, atol=ATOL)
    finally:
        model.similarity_fn_name = "maxsim"


def test_query_expansion_pads_with_mask_tokens() -> None:
    model = MultiVectorEncoder(str(fixture_dir("multi-vector-expansion")))
    features = model.modules[0].preprocess(["a", "what is the capital of france?"], task="query")
    assert features["input_ids"].shape == (2, 16)
    mask_id = model.modules[0].tokenizer.token_id("[MASK]")
    assert (features["input_ids"][features["query_expansion_positions"]] == mask_id).all()
    assert not features["attention_mask"][features["query_expansion_positions"]].any()  # attend=False
    assert all(len(q) == 16 for q in model.encode_query(["a", "a much longer query " * 20]))


def test_document_skiplist_drops_punctuation() -> None:
    model = MultiVectorEncoder(str(fixture_dir("multi-vector-expansion")))
    mask = next(m for m in model.modules if isinstance(m, MultiVectorMask))
    assert mask.skiplist_ids is not None and len(mask.skiplist_ids) > 0
    assert len(model.encode_document("hello, world!")) < len(model.encode_query("hello, world!"))
    assert len(model.encode_document("hello, world!")) == len(model.encode_document("hello world"))


def test_output_forms() -> None:
    model = MultiVectorEncoder(str(fixture_dir("multi-vector-basic")))
    single = model.encode_query("hello")
    assert isinstance(single, np.ndarray) and single.ndim == 2 and single.shape[1] == model.get_embedding_dimension()
    assert model.encode([]) == []
    rows = model.encode_query(["hello", "a longer text here"], output_value=None)
    assert {"input_ids", "attention_mask", "token_embeddings"} <= set(rows[0])
    assert rows[0]["token_embeddings"].shape[0] == rows[1]["token_embeddings"].shape[0]  # padded to the batch
    norms = np.linalg.norm(model.encode_query("hello", normalize_embeddings=True), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    assert model.similarity(single, single).shape == (1, 1)


def test_bad_input() -> None:
    model = MultiVectorEncoder(str(fixture_dir("multi-vector-basic")))
    with pytest.raises(InputError, match="convert_to_tensor"):
        model.encode("x", convert_to_tensor=True)
    with pytest.raises(InputError, match="output_value"):
        model.encode("x", output_value="sentence_embedding")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        model.encode([1, 2])  # type: ignore[list-item]
    with pytest.raises(InputError, match="maxsim"):
        model.similarity_fn_name = "cosine"
    with pytest.raises(InputError, match="same number"):
        model.similarity_pairwise([np.ones((2, 4))], [])
    with pytest.raises(ConfigError, match="pool_factor"):
        HierarchicalTokenPooling(pool_factor=0.5)


def test_save_pretrained_reloads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = MultiVectorEncoder(str(fixture_dir("multi-vector-expansion")), similarity_fn_name="meanmaxsim")
    model.save_pretrained(tmp_path / "saved")
    again = MultiVectorEncoder(str(tmp_path / "saved"))
    assert again.similarity_fn_name == "meanmaxsim"
    texts = ["what is the capital of france?", "paris, france."]
    for a, b in zip(model.encode_query(texts), again.encode_query(texts)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["multi-vector-pylate", "multi-vector-stanford"])
def test_legacy_layouts(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = MultiVectorEncoder(str(fixture_dir(name)))
    assert [type(m).__name__ for m in model.modules] == ["Transformer", "Dense", "MultiVectorMask", "Normalize"]
    prefix = {"multi-vector-pylate": "[Q] ", "multi-vector-stanford": "[unused0] "}[name]
    assert model.prompts["query"] == prefix
    assert model.tokenizer.encode(prefix + "x", add_special_tokens=False).tokens[0] in (prefix, prefix.strip())
    model.save_pretrained(tmp_path / "native")
    again = MultiVectorEncoder(str(tmp_path / "native"))
    assert again.layout.kind == "native" and again.prompts == model.prompts
    texts, expected = fixture_inputs(name), fixture_expected(name)
    for method in ("encode_query", "encode_document"):
        for g, w in zip(getattr(again, method)(texts), _split(expected, method)):
            np.testing.assert_allclose(g, w, atol=ATOL)


def test_bare_transformer_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(fixture_dir("multi-vector-basic"), bare)
    for name in ("modules.json", "config_sentence_transformers.json"):
        (bare / name).unlink()
    with pytest.raises(ConfigError, match="randomly initialised projection"):
        MultiVectorEncoder(str(bare))


def test_cli_encode_and_similarity(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from onnx_st.cli import main

    path = str(fixture_dir("multi-vector-expansion"))
    model = MultiVectorEncoder(path)
    assert main(["encode", path, "hello, world", "a"]) == 0
    rows = json.loads(capsys.readouterr().out)
    for got, want in zip(rows, model.encode(["hello, world", "a"])):
        np.testing.assert_allclose(np.array(got, dtype=np.float32), want, atol=1e-6)
    assert main(["similarity", path, "--source", "capital?", "--sentences", "paris is the capital", "a"]) == 0
    expected = model.similarity(model.encode_query(["capital?"]), model.encode_document(["paris is the capital", "a"]))
    np.testing.assert_allclose(json.loads(capsys.readouterr().out), expected[0], atol=1e-5)


def test_user_prompts_win_over_legacy_prefixes() -> None:
    model = MultiVectorEncoder(str(fixture_dir("multi-vector-pylate")), prompts={"query": "q: ", "custom": "c: "},
                               default_prompt_name="custom")
    assert model.prompts["query"] == "q: " and model.prompts["document"] == "[D] "
    assert model.default_prompt_name == "custom"
    np.testing.assert_array_equal(model.encode("x"), model.encode("x", prompt="c: "))
