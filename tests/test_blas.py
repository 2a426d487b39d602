"""NumPy's OpenBLAS runs on one thread while a model runs its batches, and gets its count back after."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

import onnx_st
from onnx_st._runtime.blas import BlasThreads, one_blas_thread, openblas
from onnx_st.modules.dense import Dense

from .conftest import fixture_dir


def _numpy_uses_openblas() -> bool:
    config = np.show_config(mode="dicts")
    return "openblas" in str(config.get("Build Dependencies", {}).get("blas", {}).get("name", "")).lower()


@pytest.fixture
def threads() -> Iterator[BlasThreads]:
    """NumPy's OpenBLAS at two threads for the test, its own count back afterwards."""
    found = openblas()
    if found is None:
        assert not _numpy_uses_openblas(), "NumPy is built on OpenBLAS, but its thread controls were not found"
        pytest.skip("this NumPy's BLAS is not OpenBLAS: the thread count is left to it")
    before = found.get()
    found.set(2)
    yield found
    found.set(before)


def test_numpy_openblas_is_found_where_numpy_ships_it() -> None:
    assert (openblas() is not None) == _numpy_uses_openblas()


def test_a_body_runs_on_one_thread_and_the_count_comes_back(threads: BlasThreads) -> None:
    with one_blas_thread():
        assert threads.get() == 1
    assert threads.get() == 2


def test_the_count_comes_back_after_an_error(threads: BlasThreads) -> None:
    with pytest.raises(RuntimeError), one_blas_thread():
        raise RuntimeError("boom")
    assert threads.get() == 2


def test_overlapping_bodies_restore_when_the_last_one_ends(threads: BlasThreads) -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with one_blas_thread():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=other)
    worker.start()
    assert inside.wait(10)
    with one_blas_thread():
        assert threads.get() == 1
    assert threads.get() == 1  # the other body still runs
    release.set()
    worker.join(10)
    assert threads.get() == 2


def test_a_user_count_other_than_the_default_comes_back(threads: BlasThreads) -> None:
    threads.set(3)
    with one_blas_thread():
        assert threads.get() == 1
    assert threads.get() == 3


def test_dense_projections_of_an_encode_call_run_on_one_thread(threads: BlasThreads,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    forward = Dense.forward

    def recording(self: Dense, features: dict) -> dict:
        seen.append(threads.get())
        return forward(self, features)

    monkeypatch.setattr(Dense, "forward", recording)
    model = onnx_st.MultiVectorEncoder(str(fixture_dir("multi-vector-basic")))
    model.encode(["a short text", "another one that is a little longer", "x"], batch_size=1)
    assert seen and set(seen) == {1}
    assert threads.get() == 2
