"""Pipeline on small NumPy modules: batching by length, order restored, features passed along, errors."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from onnx_st.base.pipeline import Pipeline
from onnx_st.errors import ConfigError, InputError
from onnx_st.modules import Features, InputModule, Module


class CharCodes(InputModule):
    """Input module without a tokenizer: one 'token' per character (its code point), padded per batch."""

    module_output_name = "input_ids"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.tasks: list[str | None] = []

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> Features:
        texts = [(prompt or "") + t for t in texts]
        self.batches.append(list(texts))
        self.tasks.append(task)
        width = max((len(t) for t in texts), default=0)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, text in enumerate(texts):
            ids[row, :len(text)] = [ord(c) for c in text]
            mask[row, :len(text)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def forward(self, features: Features) -> Features:
        return features


class SumCodes(Module):
    """``sentence_embedding``: the sum of each row's codes and its length (depends on the row only)."""

    module_input_name = "input_ids"

    def forward(self, features: Features) -> Features:
        ids, mask = features["input_ids"], features["attention_mask"]
        emb = np.stack([(ids * mask).sum(1), mask.sum(1)], axis=1).astype(np.float32)
        return {**features, "sentence_embedding": emb}

    def get_embedding_dimension(self) -> int:
        return 2


def _pipeline() -> tuple[Pipeline, CharCodes]:
    first = CharCodes()
    return Pipeline([first, SumCodes()]), first


def _expected(texts: list[str], prompt: str = "") -> np.ndarray:
    return np.array([[sum(map(ord, prompt + t)), len(prompt + t)] for t in texts], dtype=np.float32)


TEXTS = ["ccc", "a", "", "bbbbbbb", "dd", "eeeee", "f" * 20, "gg"]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 8, 100])
def test_results_come_back_in_input_order_whatever_the_batch_size(batch_size: int) -> None:
    pipeline, first = _pipeline()
    rows = pipeline.map_batches(TEXTS, lambda f: list(f["sentence_embedding"]), batch_size=batch_size)
    np.testing.assert_array_equal(np.stack(rows), _expected(TEXTS))
    assert sum(len(b) for b in first.batches) == len(TEXTS)
    assert all(len(b) <= batch_size for b in first.batches)


def test_batches_hold_texts_of_similar_length_longest_first() -> None:
    pipeline, first = _pipeline()
    pipeline.map_batches(TEXTS, lambda f: list(f["sentence_embedding"]), batch_size=3)
    lengths = [[len(t) for t in batch] for batch in first.batches]
    flat = [n for batch in lengths for n in batch]
    assert flat == sorted(flat, reverse=True)


def test_prompt_and_task_reach_the_input_module() -> None:
    pipeline, first = _pipeline()
    rows = pipeline.map_batches(TEXTS, lambda f: list(f["sentence_embedding"]), batch_size=4, prompt="q: ",
                                task="query")
    np.testing.assert_array_equal(np.stack(rows), _expected(TEXTS, "q: "))
    assert set(first.tasks) == {"query"}


def test_task_feature_pipelines_pass_the_task_along() -> None:
    seen: list[Any] = []

    class Spy(Module):
        def forward(self, features: Features) -> Features:
            seen.append(features.get("task"))
            return features

    Pipeline([CharCodes(), Spy()], task_feature=True)(["x"], task="document")
    Pipeline([CharCodes(), Spy()])(["x"], task="document")
    assert seen == ["document", None]


def test_empty_input_runs_nothing() -> None:
    pipeline, first = _pipeline()
    assert pipeline.map_batches([], lambda f: list(f["sentence_embedding"])) == []
    assert first.batches == []


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, "2", None])
def test_bad_batch_size_is_an_input_error(batch_size: Any) -> None:
    pipeline, _ = _pipeline()
    with pytest.raises(InputError, match="batch_size"):
        pipeline.map_batches(TEXTS, lambda f: list(f["sentence_embedding"]), batch_size=batch_size)


def test_the_first_module_must_tokenize() -> None:
    with pytest.raises(ConfigError, match="first module"):
        Pipeline([SumCodes()])
    with pytest.raises(ConfigError, match="first module"):
        Pipeline([])


class Recorder(Module):
    """Counts the batches in flight (at most ``parallel_runs``) and fails on one text when told."""

    module_input_name = "input_ids"

    def __init__(self, fail_on: int | None = None, delay: float = 0.01) -> None:
        self.lock = threading.Lock()
        self.active = self.most = self.started = 0
        self.fail_on, self.delay = fail_on, delay

    def forward(self, features: Features) -> Features:
        with self.lock:
            self.active += 1
            self.started += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(self.delay)
            if self.fail_on is not None and self.fail_on in features["attention_mask"].sum(1):
                raise InputError(f"a text of {self.fail_on} characters")
            return features
        finally:
            with self.lock:
                self.active -= 1


WORDS = [("w" * (1 + i % 13)) + str(i) for i in range(64)]


@pytest.mark.parametrize("parallel_runs", [1, 2, 4, 64])
def test_parallel_batches_give_the_same_results_with_at_most_parallel_runs_in_flight(parallel_runs: int) -> None:
    recorder = Recorder()
    pipeline = Pipeline([CharCodes(), recorder, SumCodes()], parallel_runs=parallel_runs)
    rows = pipeline.map_batches(WORDS, lambda f: list(f["sentence_embedding"]), batch_size=3)
    np.testing.assert_array_equal(np.stack(rows), _expected(WORDS))
    assert recorder.started == -(-len(WORDS) // 3)
    assert recorder.most <= parallel_runs
    if parallel_runs > 1:
        assert recorder.most > 1  # the batches did overlap


def test_a_failing_batch_raises_its_error_and_later_batches_never_start() -> None:
    # the longest texts come first: the first batch fails, at most parallel_runs - 1 others had started
    recorder = Recorder(fail_on=len(max(WORDS, key=len)), delay=0.05)
    pipeline = Pipeline([CharCodes(), recorder, SumCodes()], parallel_runs=2)
    with pytest.raises(InputError, match="characters"):
        pipeline.map_batches(WORDS, lambda f: list(f["sentence_embedding"]), batch_size=2)
    assert recorder.started <= 3
    assert recorder.active == 0  # nothing still runs after the call returned


def test_parallel_batches_see_the_callers_context() -> None:
    side: contextvars.ContextVar[str] = contextvars.ContextVar("side", default="right")
    seen: list[str] = []

    class Side(Module):
        module_input_name = "input_ids"

        def forward(self, features: Features) -> Features:
            seen.append(side.get())
            return features

    pipeline = Pipeline([CharCodes(), Side(), SumCodes()], parallel_runs=3)
    token = side.set("left")
    try:
        pipeline.map_batches(WORDS, lambda f: list(f["sentence_embedding"]), batch_size=4)
    finally:
        side.reset(token)
    assert seen == ["left"] * 16
