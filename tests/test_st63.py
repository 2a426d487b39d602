"""sentence-transformers 6.3 behaviours of the inference API, each checked against sentence-transformers itself on
the same fixture directory: the compounding token pooling warning, CrossEncoder's positional constructor
arguments, the warning on saving a plain-function activation, ``get_device_name`` and ``community_detection``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import onnx_st
from onnx_st.cross import cross_encoder
from onnx_st.modules.token_pooling import HierarchicalTokenPooling as OurPooling
from onnx_st.retrieval import community_detection
from tests.conftest import fixture_dir

st = pytest.importorskip("sentence_transformers")
torch = pytest.importorskip("torch")
transformers_logging = pytest.importorskip("transformers.utils.logging")

TEXTS = ["hello world", "A short one.", "the quick brown fox jumps over the lazy dog " * 8]
PAIRS = [("How old is Paris?", "Paris was founded in the 3rd century BC."), ("a question", "an answer " * 40)]


def close(a: Any, b: Any) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), atol=1e-5)


@pytest.fixture(autouse=True)
def fresh_once_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Warnings logged once per process log again in each test, on both sides."""
    monkeypatch.setattr(onnx_st.MultiVectorEncoder, "_compounding_warned", False)
    monkeypatch.setattr(cross_encoder, "_renamed_warned", set())
    transformers_logging.warning_once.cache_clear()
    yield
    transformers_logging.warning_once.cache_clear()


def logged(caplog: pytest.LogCaptureFixture, call: Callable[[], Any], *needles: str) -> tuple[Any, list[tuple[int, str]]]:
    """``call()``'s result and the ``(level, message)`` of each record it logged that contains one of ``needles``."""
    caplog.clear()
    with caplog.at_level(logging.INFO):
        result = call()
    records = [(r.levelno, r.getMessage()) for r in caplog.records if any(n in r.getMessage() for n in needles)]
    return result, records


# 1. MultiVectorEncoder: a call's token_pooling on top of the pipeline's own

COMPOUNDING = "compounding"


@pytest.mark.parametrize("fixture, call, warns", [
    ("multi-vector-pooling", lambda m, p: m.encode_document(TEXTS, token_pooling=p), True),
    ("multi-vector-pooling", lambda m, p: m.encode(TEXTS, token_pooling=p), True),  # no task counts as a document
    ("multi-vector-pooling", lambda m, p: m.encode_document(TEXTS, token_pooling=p, output_value=None), True),
    ("multi-vector-pooling", lambda m, p: m.encode_query(TEXTS, token_pooling=p), False),  # the pooling skips queries
    ("multi-vector-pooling", lambda m, p: m.encode_document([], token_pooling=p), False),  # nothing encoded
    ("multi-vector-basic", lambda m, p: m.encode_document(TEXTS, token_pooling=p), False),  # no pooling module
])
def test_compounding_token_pooling_warning(caplog: pytest.LogCaptureFixture, fixture: str,
                                           call: Callable[[Any, Any], Any], warns: bool) -> None:
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling as TheirPooling

    path = str(fixture_dir(fixture))
    theirs, ours = st.MultiVectorEncoder(path, device="cpu"), onnx_st.MultiVectorEncoder(path)
    expected, their_records = logged(caplog, lambda: [call(theirs, TheirPooling(pool_factor=2.0)) for _ in range(2)],
                                     COMPOUNDING)
    got, our_records = logged(caplog, lambda: [call(ours, OurPooling(pool_factor=2.0)) for _ in range(2)],
                              COMPOUNDING)
    assert our_records == their_records
    assert len(their_records) == (1 if warns else 0)  # logged once for both calls
    if warns:
        assert their_records[0][0] == logging.WARNING
    if expected[0] and not isinstance(expected[0][0], dict):
        for e, g in zip(expected[0], got[0]):
            close(g, e.numpy())


def test_compounding_warning_for_the_constructor_token_pooling(caplog: pytest.LogCaptureFixture) -> None:
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling as TheirPooling

    path = str(fixture_dir("multi-vector-pooling"))
    theirs = st.MultiVectorEncoder(path, device="cpu", token_pooling=TheirPooling(max_tokens=4))
    ours = onnx_st.MultiVectorEncoder(path, token_pooling=OurPooling(max_tokens=4))
    expected, their_records = logged(caplog, lambda: theirs.encode_document(TEXTS), COMPOUNDING)
    got, our_records = logged(caplog, lambda: ours.encode_document(TEXTS), COMPOUNDING)
    assert our_records == their_records and len(their_records) == 1
    for e, g in zip(expected, got):
        close(g, e.numpy())


# 2. CrossEncoder: positional constructor arguments in sentence-transformers' order

CROSS_WARNINGS = ("positional argument to CrossEncoder", "The CrossEncoder `")


@pytest.mark.parametrize("args", [
    (1, 64),
    (1, 8),
    (None, 8, "torch.nn.Identity"),
    (None, None, None, "cpu", None, False, None, True),
    (1, 16, None, "cpu", None, False, None, True, None, None, None, None, None),  # up to model_card_data
], ids=lambda a: f"{len(a)}-positional")
def test_cross_encoder_positional_arguments(caplog: pytest.LogCaptureFixture, args: tuple[Any, ...]) -> None:
    path = str(fixture_dir("cross-1label"))
    their_args = tuple(torch.nn.Identity() if a == "torch.nn.Identity" else a for a in args)
    theirs, their_records = logged(caplog, lambda: st.CrossEncoder(path, *their_args), *CROSS_WARNINGS)
    ours, our_records = logged(caplog, lambda: onnx_st.CrossEncoder(path, *args), *CROSS_WARNINGS)
    assert our_records == their_records
    assert len([r for r in their_records if "positional" in r[1]]) == len(args)
    assert ours.max_seq_length == theirs.max_seq_length
    close(ours.predict(PAIRS), theirs.predict(PAIRS))


def test_cross_encoder_keyword_wins_over_positional(caplog: pytest.LogCaptureFixture) -> None:
    path = str(fixture_dir("cross-1label"))
    theirs, their_records = logged(caplog, lambda: st.CrossEncoder(path, 1, 64, max_length=8), *CROSS_WARNINGS)
    ours, our_records = logged(caplog, lambda: onnx_st.CrossEncoder(path, 1, 64, max_length=8), *CROSS_WARNINGS)
    assert our_records == their_records and len(their_records) == 2
    assert ours.max_seq_length == theirs.max_seq_length == 8
    close(ours.predict(PAIRS), theirs.predict(PAIRS))


def test_cross_encoder_renamed_keywords_warn_once(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    def load_twice(cls: Any) -> list[Any]:
        return [cls(model_name=str(fixture_dir("cross-1label")), cache_dir=str(tmp_path), config_args={},
                    classifier_dropout=0.1) for _ in range(2)]

    _, expected = logged(caplog, lambda: load_twice(st.CrossEncoder), *CROSS_WARNINGS)
    _, got = logged(caplog, lambda: load_twice(onnx_st.CrossEncoder), *CROSS_WARNINGS)
    assert got == expected
    assert [m for _, m in expected if "renamed" in m] == [
        "The CrossEncoder `model_name` argument was renamed and is now deprecated. Please use `model_name_or_path` "
        "instead.",
        "The CrossEncoder `config_args` argument was renamed and is now deprecated. Please use `config_kwargs` "
        "instead.",
        "The CrossEncoder `cache_dir` argument was renamed and is now deprecated. Please use `cache_folder` instead."]


# 3. CrossEncoder: saving a plain-function activation

def halve(x: Any) -> Any:
    return x / 2


def scale(x: Any, factor: float) -> Any:
    return x * factor


SAVING = "Saving activation function"


@pytest.mark.parametrize("fn", [halve, functools.partial(scale, factor=3.0), None], ids=["function", "partial", "torch"])
def test_saving_a_plain_function_activation_warns(caplog: pytest.LogCaptureFixture, tmp_path: Path,
                                                  fn: Any) -> None:
    path = str(fixture_dir("cross-1label"))
    theirs = st.CrossEncoder(path, device="cpu", activation_fn=torch.nn.Identity() if fn is None else fn)
    ours = onnx_st.CrossEncoder(path, activation_fn="torch.nn.Identity" if fn is None else fn)
    close(ours.predict(PAIRS), theirs.predict(PAIRS))
    _, their_records = logged(caplog, lambda: theirs.save(str(tmp_path / "theirs")), SAVING)
    _, our_records = logged(caplog, lambda: ours.save(tmp_path / "ours"), SAVING)
    assert our_records == their_records
    assert [level for level, _ in their_records] == ([] if fn is None else [logging.WARNING])


def test_dense_saves_only_torch_activations(tmp_path: Path) -> None:
    """onnx-st's Dense holds its activation as a torch class path, so its save has no plain function to warn of."""
    from onnx_st.modules import Dense

    dense = Dense.load(fixture_dir("dense-dense-layer") / "2_Dense")
    assert isinstance(dense.activation_function, str) and dense.activation_function.startswith("torch.")


# 4. get_device_name

@pytest.mark.parametrize("their_cls, our_cls, fixture", [
    (st.SentenceTransformer, onnx_st.SentenceTransformer, "dense-mean"),
    (st.SparseEncoder, onnx_st.SparseEncoder, "sparse-max-relu"),
    (st.CrossEncoder, onnx_st.CrossEncoder, "cross-1label"),
    (st.MultiVectorEncoder, onnx_st.MultiVectorEncoder, "multi-vector-basic"),
])
def test_get_device_name_on_cpu(their_cls: Any, our_cls: Any, fixture: str) -> None:
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("sentence-transformers names the machine's accelerator, onnx-st the model's provider")
    path = str(fixture_dir(fixture))
    assert our_cls(path).get_device_name() == their_cls(path, device="cpu").get_device_name() == "cpu"


def test_get_device_name_of_a_cuda_provider() -> None:
    model = onnx_st.SentenceTransformer(str(fixture_dir("dense-mean")))
    cuda = onnx_st.RuntimeOptions.from_kwargs(device="cuda:1")
    assert cuda.providers[0] == ("CUDAExecutionProvider", {"device_id": 1})
    model.options = cuda
    assert model.get_device_name() == "cuda:1"
    model.options = replace(cuda, providers=("TensorrtExecutionProvider", "CPUExecutionProvider"))
    assert model.get_device_name() == "cuda:0"


# 5. community_detection

def embedding_sets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(8, 16))
    clustered = np.concatenate([c + 0.15 * rng.normal(size=(int(rng.integers(5, 120)), 16)) for c in centers])
    clustered = clustered[rng.permutation(len(clustered))]
    near = 0.69999999  # above 0.7 as a float32 number: sentence-transformers compares in float32
    return {"random": rng.normal(size=(300, 32)).astype(np.float32),
            "clustered": clustered.astype(np.float32),
            "clustered-float64": clustered,
            "low-dimension": rng.normal(size=(400, 3)).astype(np.float32),
            "near-threshold": np.array([[1.0, 0.0], [near, np.sqrt(1 - near * near)], [0.0, 1.0]])}


SETS = embedding_sets()


@pytest.mark.parametrize("name", sorted(SETS))
@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7, 0.75, 0.95])
@pytest.mark.parametrize("min_community_size, batch_size", [(1, 1024), (2, 7), (10, 1024), (30, 64)])
def test_community_detection_as_sentence_transformers(name: str, threshold: float, min_community_size: int,
                                                      batch_size: int) -> None:
    """Same communities, in the same order, members in the same order (sets without equal similarities: the
    order of exact ties is torch's)."""
    embeddings = SETS[name]
    expected = st.util.community_detection(embeddings, threshold=threshold, min_community_size=min_community_size,
                                           batch_size=batch_size, show_progress_bar=False)
    got = community_detection(embeddings, threshold=threshold, min_community_size=min_community_size,
                              batch_size=batch_size, show_progress_bar=False)
    assert got == expected
