"""``onnx-st embed`` on one process: formats, kinds, values, bad rows, manifest checks, interruption and resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from onnx_st.cli import main
from onnx_st.errors import InputError, ModelNotFoundError, OnnxSTError
from onnx_st.jobs.errors import BadRowsError, JobError, MissingExtraError, ResumeMismatchError
from onnx_st.jobs.runner import run_embed_job
from onnx_st.jobs.spec import detect_kind
from onnx_st.options import RuntimeOptions

from .conftest import ROOT, fixture_dir, fixture_expected
from .embed_helpers import (
    MODELS,
    assert_matches,
    expected,
    output,
    pair_rows,
    part_files,
    rows_for,
    text_rows,
    write_rows,
)

DENSE = fixture_dir("dense-mean")


def _manifest(path: Path) -> dict:
    return json.loads((path / "_manifest.json").read_text())


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_each_format_gives_the_model_values(tmp_path: Path, fmt: str) -> None:
    rows = text_rows(45)
    source = write_rows(tmp_path / f"in.{fmt}", rows)
    result = run_embed_job(source, tmp_path / "out", DENSE, part_rows=20, batch_size=8, progress=False)
    assert (result.kind, result.parts, result.parts_written, result.rows, result.rejected) == ("dense", 3, 3, 45, 0)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_manifest.json", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    table = output(tmp_path / "out")
    assert table.schema == pa.schema([("id", pa.int64()), ("embedding", pa.list_(pa.float32(), 32))])
    assert_matches(table, expected("dense", rows, 20, batch_size=8))
    golden = fixture_expected("dense-mean")["encode"]
    got = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(got[:12], golden, atol=1e-5)
    assert _manifest(tmp_path / "out")["status"] == "complete"
    assert pq.read_table(tmp_path / "out").equals(table)  # the directory reads as one Parquet dataset


def test_parquet_directory_and_string_ids(tmp_path: Path) -> None:
    rows = text_rows(30, id_prefix="doc-")
    (tmp_path / "in").mkdir()
    write_rows(tmp_path / "in" / "a.parquet", rows[:13])
    write_rows(tmp_path / "in" / "b.parquet", rows[13:])
    run_embed_job(tmp_path / "in", tmp_path / "out", DENSE, part_rows=8, progress=False)
    table = output(tmp_path / "out")
    assert table.schema.field("id").type == pa.string()
    assert_matches(table, expected("dense", rows, 8))


@pytest.mark.parametrize("kind,name", [("sparse", "sparse-max-relu"), ("sparse", "sparse-inference-free"),
                                       ("cross", "cross-1label"), ("cross", "cross-3labels")])
def test_sparse_and_cross_give_the_model_values(tmp_path: Path, kind: str, name: str) -> None:
    rows = pair_rows(30, name) if kind == "cross" else text_rows(30, name)
    source = write_rows(tmp_path / "in.jsonl", rows)
    result = run_embed_job(source, tmp_path / "out", fixture_dir(name), part_rows=12, progress=False)
    assert result.kind == kind == detect_kind(fixture_dir(name))
    table = output(tmp_path / "out")
    if kind == "sparse":
        assert table.schema.field("indices").type == pa.list_(pa.int32())
        assert table.schema.field("values").type == pa.list_(pa.float32())
    elif name == "cross-1label":
        assert table.schema.field("score").type == pa.float32()
    else:
        assert table.schema.field("score").type == pa.list_(pa.float32(), 3)
    assert_matches(table, expected(kind, rows, 12, name=name))


def test_normalize_prompt_and_columns(tmp_path: Path) -> None:
    rows = [{"key": f"k{r['id']}", "body": r["text"]} for r in text_rows(20)]
    source = write_rows(tmp_path / "in.csv", rows)
    run_embed_job(source, tmp_path / "out", DENSE, text_column="body", id_column="key", normalize=True,
                  prompt_name="query", part_rows=7, batch_size=4, progress=False)
    want = expected("dense", [{"id": r["key"], "text": r["body"]} for r in rows], 7, batch_size=4,
                    normalize_embeddings=True, prompt_name="query")
    assert_matches(output(tmp_path / "out"), want)


def test_ids_default_to_row_numbers_and_columns_are_checked(tmp_path: Path) -> None:
    rows = [{"text": r["text"]} for r in text_rows(10)]
    source = write_rows(tmp_path / "in.jsonl", rows)
    run_embed_job(source, tmp_path / "out", DENSE, progress=False)
    assert output(tmp_path / "out").column("id").to_pylist() == list(range(10))
    with pytest.raises(InputError, match="id column 'key' not found"):
        run_embed_job(source, tmp_path / "out2", DENSE, id_column="key", progress=False)
    with pytest.raises(InputError, match="column 'body' not found"):
        run_embed_job(source, tmp_path / "out3", DENSE, text_column="body", progress=False)
    with pytest.raises(InputError, match="column 'query' not found"):
        run_embed_job(source, tmp_path / "out4", fixture_dir("cross-1label"), progress=False)
    with pytest.raises(ModelNotFoundError):
        run_embed_job(source, tmp_path / "out5", tmp_path / "no-model", progress=False)
    with pytest.raises(InputError, match="normalize"):
        run_embed_job(source, tmp_path / "out6", fixture_dir("sparse-max-relu"), normalize=True, progress=False)
    with pytest.raises(InputError, match="ray engine"):
        run_embed_job(source, tmp_path / "out7", DENSE, actors=2, progress=False)
    with pytest.raises(InputError, match="local engine"):
        run_embed_job(source, tmp_path / "out8", DENSE, engine="ray",
                      runtime=RuntimeOptions.from_kwargs(intra_op_num_threads=2), progress=False)


def test_output_is_deterministic(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "in.jsonl", text_rows(40))
    for out in ("a", "b"):
        run_embed_job(source, tmp_path / out, DENSE, part_rows=15, progress=False)
    assert part_files(tmp_path / "a") == part_files(tmp_path / "b")


def test_empty_input(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text("\n")
    result = run_embed_job(tmp_path / "in.jsonl", tmp_path / "out", DENSE, progress=False)
    assert (result.parts, result.rows) == (0, 0)
    assert _manifest(tmp_path / "out")["status"] == "complete"


def _bad_jsonl(path: Path) -> Path:
    rows = text_rows(30)
    rows[3]["text"] = None
    del rows[11]["text"]
    rows[12]["text"] = 7
    rows[25]["text"] = ["a list"]
    rows[4]["text"] = ""  # the empty string is a text
    lines = [json.dumps(r) for r in rows]
    lines.insert(20, "{broken")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_rows_are_reported_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _bad_jsonl(tmp_path / "in.jsonl")
    code = main(["embed", str(source), str(tmp_path / "out"), "--model", str(DENSE), "--part-rows", "10",
                 "--no-progress"])
    assert code == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert (summary["rows"], summary["rejected"], summary["rows_encoded"]) == (31, 5, 26)
    assert "5 bad rows (ids: 3 (null), 11 (missing), 12 (not a string (int)), row 20 (invalid JSON" in captured.err
    rejected = [json.loads(line) for line in (tmp_path / "out" / "_rejected.jsonl").read_text().splitlines()]
    assert [(r["row"], r["id"], r["reason"]) for r in rejected] == [
        (3, 3, "null"), (11, 11, "missing"), (12, 12, "not a string (int)"), (20, None, "invalid JSON (JSONDecodeError)"),
        (26, 25, "not a string (list)")]
    table = output(tmp_path / "out")
    assert pq.read_table(tmp_path / "out").equals(table)  # _manifest.json and _rejected.jsonl are skipped
    ids = table.column("id").to_pylist()
    assert 4 in ids and not {3, 11, 12, 25} & set(ids) and len(ids) == 26
    assert _manifest(tmp_path / "out")["summary"] == {"rows": 31, "rows_written": 26, "rejected": 5, "parts": 4}


def test_csv_short_row_is_missing(tmp_path: Path) -> None:
    rows = text_rows(6)
    del rows[2]["text"]
    source = write_rows(tmp_path / "in.csv", rows)
    result = run_embed_job(source, tmp_path / "out", DENSE, progress=False)
    assert result.rejected == 1 and result.rejected_sample[0]["reason"] == "missing"
    assert output(tmp_path / "out").column("id").to_pylist() == [0, 1, 3, 4, 5]


def test_bad_rows_fail_the_job_and_keep_finished_parts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _bad_jsonl(tmp_path / "in.jsonl")
    out = tmp_path / "out"
    args = ["embed", str(source), str(out), "--model", str(DENSE), "--part-rows", "3", "--no-progress"]
    assert main([*args, "--on-bad-row", "fail"]) == 2
    err = capsys.readouterr().err
    assert "part 1 (input rows 3-5) has 1 bad row (ids: 3 (null))" in err and "--on-bad-row skip" in err
    assert sorted(p.name for p in out.glob("part-*")) == ["part-00000.parquet"]
    assert _manifest(out)["status"] == "running"
    with pytest.raises(BadRowsError) as info:
        run_embed_job(source, out, DENSE, part_rows=3, on_bad_row="fail", progress=False)
    assert info.value.rejected == [{"row": 3, "id": 3, "column": "text", "reason": "null"}]
    assert main(args) == 0  # resume, skipping the bad rows
    run_embed_job(source, tmp_path / "ref", DENSE, part_rows=3, progress=False)
    assert part_files(out) == part_files(tmp_path / "ref")
    assert (out / "_rejected.jsonl").read_text() == (tmp_path / "ref" / "_rejected.jsonl").read_text()


def test_resume_refuses_another_input_model_or_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_rows(tmp_path / "in.jsonl", text_rows(20))
    out = tmp_path / "out"
    run_embed_job(source, out, DENSE, part_rows=10, progress=False)
    with pytest.raises(ResumeMismatchError, match="option batch_size: 32 was recorded, now 16"):
        run_embed_job(source, out, DENSE, part_rows=10, batch_size=16, progress=False)
    with pytest.raises(ResumeMismatchError, match="option normalize"):
        run_embed_job(source, out, DENSE, part_rows=10, normalize=True, progress=False)
    with pytest.raises(ResumeMismatchError, match="model sha256"):
        run_embed_job(source, out, fixture_dir("dense-cls"), part_rows=10, progress=False)
    other = write_rows(tmp_path / "other.jsonl", text_rows(21))
    with pytest.raises(ResumeMismatchError, match="input sha256"):
        run_embed_job(other, out, DENSE, part_rows=10, progress=False)
    assert main(["embed", str(source), str(out), "--model", str(DENSE), "--part-rows", "11", "--no-progress"]) == 2
    assert "option part_rows: 10 was recorded, now 11" in capsys.readouterr().err
    # the same job again finds everything done; a copy of the input elsewhere is the same input
    shutil.copy(source, tmp_path / "copy.jsonl")
    again = run_embed_job(tmp_path / "copy.jsonl", out, DENSE, part_rows=10, progress=False)
    assert (again.parts_skipped, again.parts_written) == (2, 0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(JobError, match="not empty"):
        run_embed_job(source, tmp_path / "busy", DENSE, progress=False)


def test_interrupted_by_an_error_then_resumed(tmp_path: Path) -> None:
    rows = text_rows(50)
    source = write_rows(tmp_path / "in.parquet", rows)
    out = tmp_path / "out"

    def stop_after_two(index: int) -> None:
        if index == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_embed_job(source, out, DENSE, part_rows=8, progress=False, on_part_written=stop_after_two)
    assert sorted(p.name for p in out.glob("part-*")) == ["part-00000.parquet", "part-00001.parquet"]
    (out / ".part-00002.parquet.tmp-99999").write_bytes(b"half a file")  # what a kill during a write leaves
    written: list[int] = []
    result = run_embed_job(source, out, DENSE, part_rows=8, progress=False, on_part_written=written.append)
    assert (result.parts_skipped, result.parts_written, written) == (2, 5, [2, 3, 4, 5, 6])
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    run_embed_job(source, tmp_path / "ref", DENSE, part_rows=8, progress=False)
    assert part_files(out) == part_files(tmp_path / "ref")
    assert output(out).column("id").to_pylist() == list(range(50))


def test_killed_process_resumes_complete_without_duplicates(tmp_path: Path) -> None:
    rows = text_rows(6000)
    source = write_rows(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "onnx_st", "embed", str(source), str(out), "--model", str(DENSE),
            "--part-rows", "200", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while not list(out.glob("part-*.parquet")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the job ended before it could be killed"
    done_before = len(list(out.glob("part-*.parquet")))
    assert 1 <= done_before < 30
    assert _manifest(out)["status"] == "running"

    resumed = subprocess.run([a for a in args], capture_output=True, text=True, env=env, check=True)
    summary = json.loads(resumed.stdout)
    assert summary["parts_skipped"] == done_before and summary["parts_written"] == 30 - done_before
    table = output(out)
    ids = table.column("id").to_pylist()
    assert ids == list(range(6000)) and len(set(ids)) == 6000
    run_embed_job(source, tmp_path / "ref", DENSE, part_rows=200, progress=False)
    assert part_files(out) == part_files(tmp_path / "ref")


def test_cli_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["embed", str(tmp_path / "missing.jsonl"), str(tmp_path / "out"), "--model", str(DENSE)]) == 2
    assert "input not found" in capsys.readouterr().err
    (tmp_path / "in.txt").write_text("x")
    assert main(["embed", str(tmp_path / "in.txt"), str(tmp_path / "out"), "--model", str(DENSE)]) == 2
    assert "--format" in capsys.readouterr().err


def test_missing_extra_names_it(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "in.jsonl", text_rows(3))
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyarrow", "ray"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from onnx_st.cli import main
code = main(["embed", {str(source)!r}, {str(tmp_path / 'out')!r}, "--model", {str(DENSE)!r}])
from onnx_st.jobs.errors import MissingExtraError
from onnx_st.jobs import deps
try:
    deps.ray()
except MissingExtraError as exc:
    print("RAY:", exc)
sys.exit(code)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert run.returncode == 2, run.stderr
    assert "pip install 'onnx-st[embed]'" in run.stderr
    assert "pip install 'onnx-st[ray]'" in run.stdout
    assert issubclass(MissingExtraError, OnnxSTError) and issubclass(MissingExtraError, ImportError)
    assert issubclass(BadRowsError, InputError) and issubclass(ResumeMismatchError, JobError)


@pytest.mark.parametrize("kind", ["dense", "sparse", "cross"])
def test_kind_flag_and_auto(tmp_path: Path, kind: str) -> None:
    rows = rows_for(kind, 5)
    source = write_rows(tmp_path / "in.parquet", rows)
    a = run_embed_job(source, tmp_path / "auto", fixture_dir(MODELS[kind]), progress=False)
    b = run_embed_job(source, tmp_path / "flag", fixture_dir(MODELS[kind]), kind=kind, progress=False)
    assert a.kind == b.kind == kind
    assert output(tmp_path / "auto").equals(output(tmp_path / "flag"))


def test_part_files_carry_their_rejected_rows(tmp_path: Path) -> None:
    source = _bad_jsonl(tmp_path / "in.jsonl")
    run_embed_job(source, tmp_path / "out", DENSE, part_rows=10, progress=False)
    meta = pq.read_schema(tmp_path / "out" / "part-00001.parquet").metadata
    assert meta[b"onnx_st.rows"] == b"10-19"
    assert [r["row"] for r in json.loads(meta[b"onnx_st.rejected"])] == [11, 12]


@pytest.mark.parametrize("prompt_name", [None, "query"])
def test_multi_vector_rows_are_lists_of_token_vectors(tmp_path: Path, prompt_name: str | None) -> None:
    from onnx_st import MultiVectorEncoder

    name = "multi-vector-expansion"
    rows = text_rows(25, name)
    source = write_rows(tmp_path / "in.jsonl", rows)
    result = run_embed_job(source, tmp_path / "out", fixture_dir(name), part_rows=10, batch_size=4,
                           prompt_name=prompt_name, progress=False)
    assert result.kind == "multi-vector" == detect_kind(fixture_dir(name))
    table = output(tmp_path / "out")
    assert table.schema.field("embeddings").type == pa.list_(pa.list_(pa.float32(), 16))
    model = MultiVectorEncoder(fixture_dir(name))
    texts = [r["text"] for r in rows]
    want = model.encode_query(texts) if prompt_name == "query" else model.encode_document(texts)
    got = table.column("embeddings").to_pylist()
    assert [r["id"] for r in rows] == table.column("id").to_pylist()
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.array(g, dtype=np.float32).reshape(w.shape), w, atol=1e-6)
    from onnx_st.jobs.encode import compute, to_numpy  # the columns Ray's NumPy batches carry
    from onnx_st.jobs.spec import JobOptions

    options = JobOptions(kind="multi-vector", prompt_name=prompt_name)
    columns = to_numpy(compute(model, options, {"text": texts[:5]}))
    for g, w in zip(columns["embeddings"], want[:5]):
        np.testing.assert_allclose(g, w, atol=1e-6)
