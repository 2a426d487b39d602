"""The embedding job on a real local Ray cluster (2 CPUs, on 127.0.0.1): identical to the local engine,
resumable across engines, and the callable class in a Ray Data pipeline of one's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import ray

from onnx_st.jobs.errors import BadRowsError
from onnx_st.jobs.ray_engine import EmbedBatches, assigned_cpus
from onnx_st.jobs.runner import run_embed_job

from .conftest import fixture_dir
from .embed_helpers import MODELS, assert_matches, expected, load, output, part_files, rows_for, text_rows, write_rows
from .ray_helpers import assert_listens_on_loopback_only

DENSE = fixture_dir("dense-mean")


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    """A new local Ray cluster with 2 CPUs for the whole module (conftest keeps it on 127.0.0.1)."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _with_bad_rows(kind: str, n: int) -> list[dict]:
    rows = rows_for(kind, n)
    column = "document" if kind == "cross" else "text"
    rows[5][column] = None
    del rows[17][column]
    rows[18][column] = 3.5
    return rows


@pytest.mark.parametrize("kind", ["dense", "sparse", "cross"])
def test_ray_output_is_identical_to_local(tmp_path: Path, kind: str) -> None:
    rows = _with_bad_rows(kind, 50)
    source = write_rows(tmp_path / "in.jsonl", rows)
    model = fixture_dir(MODELS[kind])
    local = run_embed_job(source, tmp_path / "local", model, part_rows=12, batch_size=8, progress=False)
    gcs = ray.get_runtime_context().gcs_address

    def while_actors_run(index: int) -> None:
        if index == 0:
            assert_listens_on_loopback_only(gcs)

    remote = run_embed_job(source, tmp_path / "ray", model, part_rows=12, batch_size=8, engine="ray", actors=2,
                           progress=False, on_part_written=while_actors_run)
    assert remote.engine_info["actors"] == 2 and remote.engine_info["cpus_per_actor"] == 1.0
    assert remote.engine_info["address"] == gcs
    assert (remote.parts_written, remote.rejected) == (local.parts_written, local.rejected) == (5, 3)
    assert part_files(tmp_path / "ray") == part_files(tmp_path / "local")
    for name in ("_rejected.jsonl",):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "local" / name).read_text()
    assert_matches(output(tmp_path / "ray"), expected(kind, rows, 12, batch_size=8))


def test_ray_resumes_a_local_job_and_fails_on_bad_rows(tmp_path: Path) -> None:
    rows = text_rows(40)
    source = write_rows(tmp_path / "in.parquet", rows)

    def stop(index: int) -> None:
        if index == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_embed_job(source, tmp_path / "out", DENSE, part_rows=6, progress=False, on_part_written=stop)
    result = run_embed_job(source, tmp_path / "out", DENSE, part_rows=6, engine="ray", progress=False)
    assert (result.parts_skipped, result.parts_written) == (2, 5)
    assert result.engine_info["actors"] == 2  # cluster CPUs / 1 CPU per actor
    run_embed_job(source, tmp_path / "ref", DENSE, part_rows=6, progress=False)
    assert part_files(tmp_path / "out") == part_files(tmp_path / "ref")

    rows[20]["text"] = None
    bad = write_rows(tmp_path / "bad.parquet", rows)
    with pytest.raises(BadRowsError, match=r"part 3 \(input rows 18-23\) has 1 bad row \(ids: 20 \(null\)\)"):
        run_embed_job(bad, tmp_path / "bad", DENSE, part_rows=6, engine="ray", on_bad_row="fail", progress=False)
    assert sorted(p.name for p in (tmp_path / "bad").glob("part-*")) == [f"part-0000{i}.parquet" for i in range(3)]


def test_callable_in_a_users_pipeline() -> None:
    rows = text_rows(40)
    rows[7]["text"] = None
    dataset = ray.data.from_items(rows)
    embedded = dataset.map_batches(EmbedBatches, fn_constructor_kwargs={"model_dir": str(DENSE), "on_bad_row": "skip",
                                                                        "normalize": True},
                                   batch_size=16, num_cpus=1, compute=ray.data.ActorPoolStrategy(size=2))
    got = sorted(embedded.take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in got] == [i for i in range(40) if i != 7]
    assert all(r["text"] == rows[r["id"]]["text"] for r in got)  # input columns pass through
    want = load("dense").encode([r["text"] for r in got], normalize_embeddings=True)
    np.testing.assert_allclose(np.stack([r["embedding"] for r in got]), want, atol=1e-6)

    arrow = ray.data.from_arrow(pa.Table.from_pylist(rows_for("sparse", 20))).map_batches(
        EmbedBatches, fn_constructor_kwargs={"model_dir": str(fixture_dir("sparse-max-relu"))},
        batch_size=8, batch_format="pyarrow", num_cpus=1, compute=ray.data.ActorPoolStrategy(size=1))
    table = pa.concat_tables(arrow.iter_batches(batch_size=None, batch_format="pyarrow")).sort_by("id")
    assert table.schema.field("indices").type == pa.list_(pa.int32())
    sparse = load("sparse").encode([r["text"] for r in rows_for("sparse", 20)])
    for got_idx, got_val, vec in zip(table.column("indices").to_pylist(), table.column("values").to_pylist(), sparse):
        assert got_idx == vec.indices.tolist()
        np.testing.assert_allclose(got_val, vec.values, atol=1e-6)


def test_actor_threads_follow_its_cpus() -> None:
    @ray.remote(num_cpus=2)
    def probe(fallback: float | None) -> tuple[int | None, int | None]:
        model = EmbedBatches(str(DENSE), num_cpus=fallback)
        return assigned_cpus(fallback), model.threads

    assert ray.get(probe.remote(None)) == (2, 2)
    assert assigned_cpus(3.0) == 3  # the driver has no CPU assignment: the fallback
    # parallel runs share the actor's CPUs: each run gets its part as intra-op threads
    shared = EmbedBatches(str(DENSE), num_cpus=4, runtime={"parallel_runs": 2})
    assert (shared.threads, shared.model.options.intra_op_num_threads, shared.model.pipeline.parallel_runs) == (4, 2, 2)
    with pytest.raises(BadRowsError, match="1 bad row"):
        EmbedBatches(str(DENSE))(pa.table({"id": [1, 2], "text": ["a", None]}))
    batch = EmbedBatches(str(fixture_dir("cross-3labels")), num_cpus=1)(
        {"query": np.array(["q1", "q2"], dtype=object), "document": np.array(["d1", "d2"], dtype=object)})
    assert batch["score"].shape == (2, 3)


def test_cli_ray_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from onnx_st.cli import main

    source = write_rows(tmp_path / "in.csv", text_rows(20))
    code = main(["embed", str(source), str(tmp_path / "out"), "--model", str(DENSE), "--engine", "ray",
                 "--actors", "1", "--part-rows", "8", "--no-progress"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["engine"], summary["parts_written"], summary["engine_info"]["actors"]) == ("ray", 3, 1)
    run_embed_job(source, tmp_path / "ref", DENSE, part_rows=8, progress=False)
    assert part_files(tmp_path / "out") == part_files(tmp_path / "ref")
    assert sorted(r["id"] for r in ray.data.read_parquet(str(tmp_path / "out")).take_all()) == list(range(20))
