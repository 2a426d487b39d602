"""SparseEncoder on the tiny sparse fixtures: golden outputs of sentence-transformers, output forms, bad input."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import onnx_st
from onnx_st import InputError, SparseEmbeddings, SparseEncoder, SparseVector, UnsupportedModuleError
from onnx_st.modules.splade import SpladeMLM, splade_pool

from .conftest import fixture_dir, fixture_expected, fixture_inputs

SPARSE = ["sparse-max-relu", "sparse-sum-log1p", "sparse-inference-free"]
ATOL = 1e-4  # the fixtures' own tolerance (ONNX graph vs PyTorch)


def _texts(name: str) -> list[str]:
    return list(fixture_inputs(name))


def _nonempty(texts: list[str]) -> np.ndarray:
    return np.array([bool(t.strip()) for t in texts])


@pytest.fixture(scope="module", params=SPARSE)
def loaded(request: pytest.FixtureRequest) -> tuple[str, SparseEncoder]:
    return request.param, SparseEncoder(str(fixture_dir(request.param)))


@pytest.mark.parametrize("method", ["encode", "encode_query", "encode_document"])
def test_golden_outputs(loaded: tuple[str, SparseEncoder], method: str) -> None:
    name, model = loaded
    texts, expected = _texts(name), fixture_expected(name)[method]
    got = getattr(model, method)(texts)
    assert isinstance(got, SparseEmbeddings) and got.shape == expected.shape
    dense = got.to_dense()
    keep = _nonempty(texts)
    assert np.array_equal(dense[keep] > 0, expected[keep] > 0), "active dimensions differ"
    np.testing.assert_allclose(dense[keep], expected[keep], rtol=1e-4, atol=ATOL)
    assert not dense[~keep].any(), "empty texts must give empty vectors"


def test_golden_similarity_and_decode(loaded: tuple[str, SparseEncoder]) -> None:
    name, model = loaded
    texts, expected = _texts(name), fixture_expected(name)
    keep = _nonempty(texts)
    emb = model.encode(texts)
    sim = model.similarity(emb, emb)
    np.testing.assert_allclose(sim[np.ix_(keep, keep)], expected["similarity"][np.ix_(keep, keep)], rtol=1e-4,
                               atol=1e-3)
    decode = json.loads((fixture_dir(name) / "decode.json").read_text())
    i = texts.index(decode["text"])
    for method in ("encode", "encode_query", "encode_document"):
        got = model.decode(getattr(model, method)(texts[i]), top_k=decode["top_k"])
        assert [t for t, _ in got] == [t for t, _ in decode[method]], method
        np.testing.assert_allclose([w for _, w in got], [w for _, w in decode[method]], rtol=1e-4, atol=ATOL)


def test_modules_and_routes() -> None:
    assert [type(m).__name__ for m in SparseEncoder(str(fixture_dir("sparse-max-relu"))).modules] == ["SpladeMLM"]
    router = SparseEncoder(str(fixture_dir("sparse-inference-free"))).modules[0]
    chains = {route: [type(m).__name__ for m in chain] for route, chain in router.routes.items()}
    assert chains == {"query": ["SparseStaticEmbedding"], "document": ["SpladeMLM"]}


def test_inference_free_query_weights_only_its_tokens() -> None:
    model = SparseEncoder(str(fixture_dir("sparse-inference-free")))
    query = model.encode_query("capital of france")
    static = model.modules[0].routes["query"][0]
    ids = static.tokenizer.backend.encode("capital of france", add_special_tokens=False).ids
    assert sorted(set(ids)) == query.indices.tolist()
    np.testing.assert_array_equal(query.values, static.weight[query.indices])


@pytest.mark.parametrize("strategy", ["max", "sum"])
@pytest.mark.parametrize("activation", ["relu", "log1p_relu"])
def test_splade_pool_matches_the_plain_formula(strategy: str, activation: str) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (3, 7, 50)).astype(np.float32)
    mask = np.ones((3, 7), dtype=np.int64)
    mask[1, 4:] = 0
    mask[2, 1:] = 0
    x = np.log1p(np.maximum(logits * mask[..., None], 0))
    x = np.log1p(x) if activation == "log1p_relu" else x
    want = x.max(axis=1) if strategy == "max" else x.sum(axis=1)
    np.testing.assert_allclose(splade_pool(logits.copy(), mask, strategy, activation), want, rtol=1e-6, atol=1e-7)


def test_logits_budget_bounds_each_run_and_keeps_results() -> None:
    model = SparseEncoder(str(fixture_dir("sparse-sum-log1p")))
    texts = _texts("sparse-sum-log1p") * 4
    reference = model.encode(texts, batch_size=64).to_dense()
    splade = model.modules[0]
    assert isinstance(splade, SpladeMLM)
    shapes: list[tuple[int, ...]] = []
    forward = splade.transformer.forward

    def recording(features: dict) -> dict:
        out = forward(features)
        shapes.append(out["token_embeddings"].shape)
        return out

    splade.transformer.forward = recording  # type: ignore[method-assign]
    model.logits_budget_mib = 0.5
    got = model.encode(texts, batch_size=64).to_dense()
    assert max(int(np.prod(s)) * 4 for s in shapes) <= 0.5 * 2**20 or max(s[0] for s in shapes) == 1
    assert len(shapes) > 1 and min(s[0] for s in shapes) >= 1
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.encode(texts, batch_size=1).to_dense(), reference, rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError):
        model.logits_budget_mib = 0


def test_output_forms() -> None:
    model = SparseEncoder.from_dir(fixture_dir("sparse-max-relu"))
    texts = _texts("sparse-max-relu")
    emb = model.encode(texts)
    dense = model.encode(texts, convert_to_sparse_tensor=False)
    assert isinstance(dense, np.ndarray) and dense.dtype == np.float32 and dense.shape == emb.shape
    np.testing.assert_array_equal(emb.to_dense(), dense)
    one = model.encode(texts[0])
    assert isinstance(one, SparseVector) and one == emb[0]
    assert model.encode(texts[0], convert_to_sparse_tensor=False).shape == (emb.dim,)
    rows = model.encode(texts, convert_to_tensor=False)
    assert isinstance(rows, list) and all(isinstance(r, SparseVector) for r in rows) and rows[3] == emb[3]
    dense_rows = model.encode(texts, convert_to_tensor=False, convert_to_sparse_tensor=False)
    assert isinstance(dense_rows, list) and np.array_equal(dense_rows[3], dense[3])
    if importlib.util.find_spec("scipy") is None:  # the runtime-only install: a clear error, not a crash
        with pytest.raises(ImportError, match="pip install scipy"):
            emb.to_scipy()
    else:
        scipy_matrix = emb.to_scipy()
        assert scipy_matrix.shape == emb.shape and np.array_equal(scipy_matrix.toarray(), dense)
        assert SparseEmbeddings.from_scipy(scipy_matrix)[2] == emb[2]
    qdrant = emb.to_qdrant()[0]
    assert qdrant["indices"] == emb[0].indices.tolist() and qdrant["values"] == emb[0].values.tolist()
    tokens = dict(model.decode(emb[0]))
    assert emb[0].to_opensearch() == tokens
    assert emb.to_elasticsearch()[0] == {t.replace(".", "_"): w for t, w in tokens.items()}
    assert emb[1:3].shape == (2, emb.dim) and emb[[4, 0]][1] == emb[0]
    empty = model.encode([])
    assert isinstance(empty, SparseEmbeddings) and empty.shape == (0, emb.dim)
    assert model.encode([], convert_to_sparse_tensor=False).shape == (0, emb.dim)


def test_similarity_functions_equal_dense_numpy() -> None:
    model = SparseEncoder(str(fixture_dir("sparse-sum-log1p")))
    emb = model.encode(_texts("sparse-sum-log1p"))
    a, b = emb[:7], emb[5:]
    da, db = a.to_dense().astype(np.float64), b.to_dense().astype(np.float64)
    na = np.maximum(np.linalg.norm(da, axis=1), 1e-12)
    nb = np.maximum(np.linalg.norm(db, axis=1), 1e-12)
    want = {
        "dot": da @ db.T,
        "cosine": (da @ db.T) / na[:, None] / nb[None, :],
        "euclidean": -np.linalg.norm(da[:, None] - db[None], axis=-1),
        "manhattan": -np.abs(da[:, None] - db[None]).sum(-1),
    }
    for name, expected in want.items():
        model.similarity_fn_name = name
        np.testing.assert_allclose(model.similarity(a, b), expected, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(model.similarity(a.to_dense(), b), expected, rtol=1e-5, atol=1e-4)
        pairs = model.similarity_pairwise(a, emb[:7][::-1])
        np.testing.assert_allclose(pairs, np.diag(model.similarity(a, emb[:7][::-1])), rtol=1e-5, atol=1e-4)
    assert SparseEncoder(str(fixture_dir("sparse-sum-log1p"))).similarity_fn_name == "dot"


def test_sparsity_decode_intersection() -> None:
    model = SparseEncoder(str(fixture_dir("sparse-max-relu")))
    emb = model.encode(_texts("sparse-max-relu"))
    counts = (emb.to_dense() > 0).sum(axis=1)
    stats = model.sparsity(emb)
    assert stats["active_dims"] == pytest.approx(counts.mean())
    assert stats["sparsity_ratio"] == pytest.approx(1 - counts.mean() / emb.dim)
    assert model.sparsity(emb[0])["active_dims"] == counts[0]
    assert model.sparsity(model.encode([])) == {"active_dims": 0.0, "sparsity_ratio": 1.0}
    full = model.decode(emb[0])
    assert len(full) == counts[0] and [w for _, w in full] == sorted((w for _, w in full), reverse=True)
    assert model.decode(emb, top_k=3)[0] == full[:3] and model.decode(emb[1]) == []
    assert model.decode(emb[0].to_dense(), top_k=2) == full[:2]
    shared = model.intersection(emb[0], emb[2])
    assert set(shared.indices) == set(emb[0].indices) & set(emb[2].indices)


def test_max_active_dims_keeps_the_largest_and_round_trips(tmp_path: Path) -> None:
    model = SparseEncoder(str(fixture_dir("sparse-max-relu")))
    texts = _texts("sparse-max-relu")
    full = model.encode(texts).to_dense()
    top = model.encode(texts, max_active_dims=5)
    assert top.active_dims().max() == 5
    for row, dense in zip(top, full):
        assert set(row.indices) == set(np.argsort(-dense, kind="stable")[: row.nnz]) or row.nnz < 5
        np.testing.assert_array_equal(row.values, dense[row.indices])
    limited = SparseEncoder(str(fixture_dir("sparse-max-relu")), max_active_dims=5)
    limited.save_pretrained(tmp_path / "saved")
    reloaded = SparseEncoder(str(tmp_path / "saved"))
    assert reloaded.max_active_dims == 5 and reloaded.encode(texts).active_dims().max() == 5
    assert reloaded.encode(texts, max_active_dims=7).active_dims().max() == 7


def test_bare_masked_lm_directory_gets_max_relu_pooling(tmp_path: Path) -> None:
    source = fixture_dir("sparse-max-relu")
    target = tmp_path / "bare"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(
        "modules.json", "1_SpladePooling", "sentence_bert_config.json", "config_sentence_transformers.json"))
    texts = _texts("sparse-max-relu")
    got = SparseEncoder(str(target)).encode(texts).to_dense()
    np.testing.assert_allclose(got, SparseEncoder(str(source)).encode(texts).to_dense(), rtol=1e-6, atol=1e-7)
    (target / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert"}))
    with pytest.raises(UnsupportedModuleError):
        SparseEncoder(str(target))


def test_idf_json_weights_and_unsized_pooling_config(tmp_path: Path) -> None:
    """Older saves: IDF weights in a JSON named by ``path``; SpladePooling without ``embedding_dimension``."""
    source = fixture_dir("sparse-inference-free")
    target = tmp_path / "idf-json"
    shutil.copytree(source, target)
    static = SparseEncoder(str(source)).modules[0].routes["query"][0]
    vocab = static.tokenizer.backend.get_vocab()
    idf = {token: float(static.weight[i]) for token, i in vocab.items() if static.weight[i] != 0}
    query_dir = target / "query_0_SparseStaticEmbedding"
    (query_dir / "model.safetensors").unlink()
    (query_dir / "idf.json").write_text(json.dumps(idf))
    (query_dir / "config.json").write_text(json.dumps({"frozen": True, "path": "idf.json"}))
    pooling = target / "document_1_SpladePooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "embedding_dimension": None}))
    texts = _texts("sparse-inference-free")
    model, reference = SparseEncoder(str(target)), SparseEncoder(str(source))
    assert model.get_embedding_dimension() == reference.get_embedding_dimension()
    np.testing.assert_array_equal(model.encode_query(texts).to_dense(), reference.encode_query(texts).to_dense())
    np.testing.assert_array_equal(model.encode(texts).to_dense(), reference.encode(texts).to_dense())
    emb = model.encode(texts)
    assert emb[_nonempty(texts)].shape == (int(_nonempty(texts).sum()), emb.dim)


def test_hub_cache_and_drop_in_constructor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_hub import make_hub_cache

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = make_hub_cache(tmp_path, "acme/tiny-splade-if", fixture_dir("sparse-inference-free"))
    texts, expected = _texts("sparse-inference-free"), fixture_expected("sparse-inference-free")
    keep = _nonempty(texts)
    hub = SparseEncoder.from_pretrained("acme/tiny-splade-if", cache_dir=tmp_path, local_files_only=True)
    drop_in = SparseEncoder("acme/tiny-splade-if", backend="onnx", cache_folder=str(tmp_path), device="cpu",
                            model_kwargs={"provider": "CPUExecutionProvider", "file_name": "onnx/model.onnx"})
    for model in (hub, drop_in):
        assert model.model_dir == snapshot
        for method in ("encode_query", "encode_document"):
            got = getattr(model, method)(texts, convert_to_sparse_tensor=False)
            np.testing.assert_allclose(got[keep], expected[method][keep], rtol=1e-4, atol=ATOL)


@pytest.mark.parametrize("bad", [0, -3, True, 2.5, "8"])
def test_bad_max_active_dims(bad: object) -> None:
    model = SparseEncoder(str(fixture_dir("sparse-max-relu")))
    with pytest.raises(InputError, match="max_active_dims"):
        model.encode(["a text"], max_active_dims=bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="max_active_dims"):
        SparseEncoder(str(fixture_dir("sparse-max-relu")), max_active_dims=bad)  # type: ignore[arg-type]


def test_bad_input_is_refused_clearly() -> None:
    model = SparseEncoder(str(fixture_dir("sparse-inference-free")))
    for bad in (None, 3, ["ok", None], ["ok", b"bytes"]):
        with pytest.raises(InputError):
            model.encode(bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="batch_size"):
        model.encode(["a"], batch_size=0)
    with pytest.raises(InputError, match="additional keyword arguments that this model does not use"):
        model.encode(["a"], normalize_embeddings=True)
    with pytest.raises(InputError, match="Prompt name"):
        model.encode(["a"], prompt_name="missing")
    with pytest.raises(InputError, match="route"):
        model.encode([""], task="summary")
    with pytest.raises(InputError, match="top_k"):
        model.decode(model.encode("a"), top_k=0)
    with pytest.raises(InputError):
        model.similarity(model.encode(["a"]), np.ones((1, 3), np.float32))
    with pytest.raises(InputError):
        model.similarity_pairwise(model.encode(["a", "b"]), model.encode(["a"]))
    with pytest.raises(InputError):
        model.similarity_fn_name = "jaccard"


def test_empty_strings_give_empty_vectors_in_place() -> None:
    model = SparseEncoder(str(fixture_dir("sparse-max-relu")))
    texts = ["", "the weather is nice", "   ", "what is the capital of france?", "\n"]
    emb = model.encode(texts)
    assert emb.active_dims().tolist()[0::2] == [0, 0, 0] and all(emb.active_dims()[[1, 3]] > 0)
    assert emb[1] == model.encode(texts[1]) and emb[3] == model.encode(texts[3])
    assert model.encode("").nnz == 0 and model.encode_query(["", ""]).nnz == 0


def test_public_names() -> None:
    assert {"SparseEncoder", "SparseEmbeddings", "SparseVector"} <= set(onnx_st.__all__)
