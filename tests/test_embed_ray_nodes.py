"""The embedding job on Ray clusters this module starts on 127.0.0.1: the local cluster a job starts
for itself, and a two-node cluster (head and worker node, 1 CPU each) that loses its worker node."""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from onnx_st.jobs.ray_cluster import CLUSTER_MODE_ENV
from onnx_st.jobs.runner import run_embed_job

from .conftest import fixture_dir
from .embed_helpers import part_files, text_rows, write_rows
from .ray_helpers import assert_listens_on_loopback_only

DENSE = fixture_dir("dense-mean")
ROWS, PART_ROWS = 600, 50
PARTS = ROWS // PART_ROWS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """An input of 600 rows and the part files one process writes for it (parts of 50 rows)."""
    root = tmp_path_factory.mktemp("corpus")
    source = write_rows(root / "in.parquet", text_rows(ROWS))
    run_embed_job(source, root / "local", DENSE, part_rows=PART_ROWS, progress=False)
    return source, part_files(root / "local")


def test_a_jobs_own_cluster_listens_on_loopback_even_in_cluster_mode(
        corpus: tuple[Path, dict[str, bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, local = corpus
    constants = importlib.import_module("ray._private.ray_constants")  # where Ray keeps the mode it read
    monkeypatch.delenv(CLUSTER_MODE_ENV)  # this process as Ray sees it without conftest's setting
    monkeypatch.setattr(constants, "ENABLE_RAY_CLUSTER", True)
    assert not ray.is_initialized()
    seen: list[str] = []

    def while_actors_run(index: int) -> None:
        if not seen:
            seen.append(ray.get_runtime_context().gcs_address)
            assert_listens_on_loopback_only(seen[0])

    result = run_embed_job(source, tmp_path / "out", DENSE, part_rows=PART_ROWS, engine="ray", actors=1,
                           progress=False, on_part_written=while_actors_run)
    assert result.engine_info["address"] == seen[0]
    assert part_files(tmp_path / "out") == local
    assert not ray.is_initialized()  # the job shut its cluster down
    assert CLUSTER_MODE_ENV not in os.environ and constants.ENABLE_RAY_CLUSTER  # and put Ray's mode back


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head node and a worker node with 1 CPU each on 127.0.0.1."""
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        nodes.add_node(num_cpus=1)
        yield nodes
    finally:
        ray.shutdown()  # a test that failed while connected must not turn into a teardown error
        nodes.shutdown()


@contextmanager
def all_actors_started() -> Iterator[None]:
    """Ray Data starts every actor of a pool before it hands out blocks (by default the first actor up
    may take them all), so that each node gets parts."""
    context = ray.data.DataContext.get_current()
    saved = context.wait_for_min_actors_s
    context.wait_for_min_actors_s = 60
    try:
        yield
    finally:
        context.wait_for_min_actors_s = saved


def _node_ids(nodes: Cluster) -> list[str]:
    return [node.node_id for node in nodes.list_all_nodes()]


def _worker(nodes: Cluster) -> ray._private.node.Node:
    """The worker node, started again if a test removed it (Ray counts the CPU of a node killed without
    warning until its health checks fail, so the tests below ask for 2 actors instead of the default)."""
    return next(iter(nodes.worker_nodes)) if nodes.worker_nodes else nodes.add_node(num_cpus=1)


def test_cli_job_on_two_nodes(corpus: tuple[Path, dict[str, bytes]], cluster: Cluster, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from onnx_st.cli import main

    source, local = corpus
    _worker(cluster)
    assert_listens_on_loopback_only(cluster.address)
    with all_actors_started():
        code = main(["embed", str(source), str(tmp_path / "out"), "--model", str(DENSE), "--engine", "ray",
                     "--address", cluster.address, "--cpus-per-actor", "1", "--part-rows", str(PART_ROWS),
                     "--no-progress"])
    assert code == 0
    info = json.loads(capsys.readouterr().out)["engine_info"]
    assert (info["actors"], info["cluster_cpus"], info["address"]) == (2, 2.0, cluster.address)
    assert sorted(info["parts_by_node"]) == sorted(_node_ids(cluster))  # an actor on each node encoded parts
    assert sum(info["parts_by_node"].values()) == PARTS
    assert part_files(tmp_path / "out") == local


def test_losing_the_worker_node_mid_run(corpus: tuple[Path, dict[str, bytes]], cluster: Cluster,
                                        tmp_path: Path) -> None:
    source, local = corpus
    worker = _worker(cluster)
    written: list[int] = []

    def lose_worker(index: int) -> None:
        written.append(index)
        if len(written) == 1:
            cluster.remove_node(worker, allow_graceful=False)

    with all_actors_started():  # the worker node has parts in hand when it goes
        result = run_embed_job(source, tmp_path / "out", DENSE, part_rows=PART_ROWS, engine="ray", actors=2,
                               address=cluster.address, progress=False, on_part_written=lose_worker)
    assert sorted(written) == list(range(PARTS))  # every part written once, none twice
    assert result.parts_written == sum(result.engine_info["parts_by_node"].values()) == PARTS
    assert part_files(tmp_path / "out") == local
    again = run_embed_job(source, tmp_path / "out", DENSE, part_rows=PART_ROWS, engine="ray", address=cluster.address,
                          progress=False)
    assert (again.parts_skipped, again.parts_written) == (PARTS, 0)


def test_resuming_after_losing_the_worker_node(corpus: tuple[Path, dict[str, bytes]], cluster: Cluster,
                                               tmp_path: Path) -> None:
    source, local = corpus
    worker = _worker(cluster)
    first: list[int] = []

    def lose_worker_then_stop(index: int) -> None:
        first.append(index)
        if len(first) == 1:
            cluster.remove_node(worker, allow_graceful=False)
        if len(first) == 4:
            raise KeyboardInterrupt

    with all_actors_started(), pytest.raises(KeyboardInterrupt):
        run_embed_job(source, tmp_path / "out", DENSE, part_rows=PART_ROWS, engine="ray", actors=2,
                      address=cluster.address, progress=False, on_part_written=lose_worker_then_stop)
    assert not ray.is_initialized()
    second: list[int] = []
    result = run_embed_job(source, tmp_path / "out", DENSE, part_rows=PART_ROWS, engine="ray", address=cluster.address,
                           progress=False, on_part_written=second.append)
    assert (result.parts_skipped, result.parts_written) == (4, PARTS - 4)
    assert sorted(first + second) == list(range(PARTS))  # nothing lost, nothing written twice
    assert list(result.engine_info["parts_by_node"]) == [cluster.head_node.node_id]
    assert part_files(tmp_path / "out") == local


def test_a_thread_still_calling_ray_does_not_outlive_the_jobs_session(
        corpus: tuple[Path, dict[str, bytes]], cluster: Cluster, tmp_path: Path) -> None:
    """Ray Data's executor may still be calling Ray when a job ends; a Ray call without a session starts
    one (``ray.init()`` from that thread), which would leave this process connected after the job."""
    source, local = corpus
    last_part_at: list[float] = []
    calls: list[object] = []

    def keeps_calling_ray() -> None:
        while not last_part_at or time.monotonic() < last_part_at[0] + 1.0:
            calls.append(ray.put(len(calls)))
            time.sleep(0.05)

    straggler = threading.Thread(target=keeps_calling_ray, daemon=True)
    written: list[int] = []

    def start_straggler(index: int) -> None:
        written.append(index)
        if len(written) == 1:
            straggler.start()
        if len(written) == PARTS:
            last_part_at.append(time.monotonic())

    result = run_embed_job(source, tmp_path / "out", DENSE, part_rows=PART_ROWS, engine="ray", actors=1,
                           address=cluster.address, progress=False, on_part_written=start_straggler)
    assert result.parts_written == PARTS and part_files(tmp_path / "out") == local
    assert not straggler.is_alive() and calls  # the job waited for it, and it ran while the job did
    assert not ray.is_initialized()
