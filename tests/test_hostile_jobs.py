"""``onnx-st embed`` on hostile corpora and a hostile disk: a one-line error and exit status 2, finished parts
kept and resumed byte-identically; ids keep their type; a CSV record the parser merges is a bad row."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onnx_st.cli import main
from onnx_st.jobs import writer
from onnx_st.jobs.errors import JobError
from onnx_st.jobs.readers import open_reader
from onnx_st.jobs.runner import run_embed_job

from .conftest import fixture_dir
from .embed_helpers import assert_matches, expected, output, part_files, text_rows, write_rows

DENSE = fixture_dir("dense-mean")


def _embed(capsys: pytest.CaptureFixture[str], source: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = main(["embed", str(source), str(out), "--model", str(DENSE), "--no-progress", *extra])
    return code, capsys.readouterr().err


def _one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("onnx-st: error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, err)


@pytest.mark.parametrize("corruption", ["garbage", "truncated"])
def test_corrupt_parquet_file_in_an_input_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 corruption: str) -> None:
    (tmp_path / "in").mkdir()
    write_rows(tmp_path / "in" / "a.parquet", text_rows(10))
    bad = write_rows(tmp_path / "in" / "b.parquet", text_rows(10)[5:])
    bad.write_bytes(b"not parquet at all" if corruption == "garbage" else bad.read_bytes()[:-20])
    code, err = _embed(capsys, tmp_path / "in", tmp_path / "out")
    assert code == 2
    _one_line_error(err, "b.parquet")


def test_latin1_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes("id,text\n1,caf\xe9 cr\xe8me\n".encode("latin-1"))
    code, err = _embed(capsys, source, tmp_path / "out")
    assert code == 2
    _one_line_error(err, "in.csv", "not UTF-8", "0xe9")


@pytest.mark.parametrize("code_name", ["ENOSPC", "EROFS", "EACCES"])
def test_full_or_read_only_disk_keeps_finished_parts_and_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, code_name: str) -> None:
    """The third part cannot be written: exit 2 with one line, two parts kept, a rerun completes them all
    byte-identically to a run that never failed."""
    source = write_rows(tmp_path / "in.jsonl", text_rows(25))
    out = tmp_path / "out"
    real = writer._replace_atomically
    calls = {"parts": 0}

    def failing(target: Path, write: Any) -> None:
        if target.name.startswith("part-"):
            calls["parts"] += 1
            if calls["parts"] == 3:
                def broken(tmp: Path) -> None:
                    tmp.write_bytes(b"partial")
                    raise OSError(getattr(errno, code_name), f"simulated {code_name}", str(tmp))
                return real(target, broken)
        return real(target, write)

    monkeypatch.setattr(writer, "_replace_atomically", failing)
    code, err = _embed(capsys, source, out, "--part-rows", "5")
    assert code == 2
    _one_line_error(err, "part-00002.parquet", f"simulated {code_name}")
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("_")) == [
        "part-00000.parquet", "part-00001.parquet"]
    monkeypatch.setattr(writer, "_replace_atomically", real)
    assert _embed(capsys, source, out, "--part-rows", "5")[0] == 0
    run_embed_job(source, tmp_path / "ref", DENSE, part_rows=5, progress=False)
    assert part_files(out) == part_files(tmp_path / "ref")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,text\n1,\xe9\n")
    with pytest.raises(JobError):
        main(["embed", str(source), str(tmp_path / "out"), "--model", str(DENSE), "--no-progress", "--debug"])


# --- ids -------------------------------------------------------------------------------------------------

ID_VALUES = {"integer": st.integers(-5, 5), "string": st.sampled_from(["1", "a", "-2", "x y"]),
             "number": st.sampled_from([0.5, 1.5, -2.25])}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(sorted(ID_VALUES)), min_size=1, max_size=6), data=st.data())
def test_ids_keep_their_type_or_mixed_types_are_refused(tmp_path: Path, kinds: list[str],
                                                         data: st.DataObject) -> None:
    ids = [data.draw(ID_VALUES[k]) for k in kinds]
    rows = [{"id": i, "text": f"text {n}"} for n, i in enumerate(ids)]
    source = write_rows(tmp_path / "in.jsonl", rows)
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    if len(set(kinds)) > 1:
        with pytest.raises(JobError, match="ids of different types") as info:
            run_embed_job(source, out, DENSE, progress=False)
        assert sum(k in str(info.value) for k in set(kinds)) == 2
        return
    run_embed_job(source, out, DENSE, progress=False)
    table = output(out)
    assert table.column("id").to_pylist() == ids
    assert table.schema.field("id").type == {"integer": pa.int64(), "string": pa.string(),
                                             "number": pa.float64()}[kinds[0]]


def test_one_and_string_one_do_not_collide(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_rows(tmp_path / "in.jsonl", [{"id": 1, "text": "a"}, {"id": "1", "text": "b"}])
    code, err = _embed(capsys, source, tmp_path / "out")
    assert code == 2
    _one_line_error(err, "integer (row 0: 1)", "string (row 1: '1')")


def test_parquet_files_with_different_id_types(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    write_rows(tmp_path / "in" / "a.parquet", text_rows(4))
    write_rows(tmp_path / "in" / "b.parquet", text_rows(4, id_prefix="doc-"))
    code, err = _embed(capsys, tmp_path / "in", tmp_path / "out")
    assert code == 2
    _one_line_error(err, "int64", "string", "a.parquet", "b.parquet")


# --- CSV records the parser would merge ------------------------------------------------------------------

@pytest.mark.parametrize(("lines", "bad"), [
    (['1,"unterminated', "2,second", '3,"third"', "4,fourth"], "lines 2-"),
    (["1,first", '2,"never closed', "3,third"], "lines 3-"),
    (["1,first", "2,an unquoted, comma", "3,third"], "3 cells"),
    (['1,"closed" then text', "2,second"], "unparseable"),
], ids=["quote-merges-next-rows", "quote-to-end-of-file", "extra-cell", "text-after-quote"])
def test_csv_record_the_parser_merges_is_a_bad_row(tmp_path: Path, lines: list[str], bad: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,text\n" + "\n".join(lines) + "\n", encoding="utf-8")
    result = run_embed_job(source, tmp_path / "out", DENSE, progress=False)
    assert result.rejected >= 1 and any(bad in r["reason"] for r in result.rejected_sample), result.rejected_sample
    table = output(tmp_path / "out")
    good = [{"id": int(line.split(",", 1)[0]), "text": line.split(",", 1)[1]} for line in lines
            if line.count('"') == 0 and line.count(",") == 1]
    encoded = table.column("id").to_pylist()
    assert set(encoded) <= {g["id"] for g in good}, (encoded, result.rejected_sample)
    kept = [g for g in good if g["id"] in encoded]
    assert_matches(table, expected("dense", kept, 10_000))


def test_csv_rows_are_counted_the_same_by_scan_and_parts(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text('id,text\n1,"open\n2,b\n3,"c"\n4,d\n5,e,f\n', encoding="utf-8")
    reader = open_reader(source, ["text"], None)
    parts = list(reader.parts(2))
    assert reader.scan().rows == sum(p.num_rows for p in parts)
    assert sum(len(p.row_errors) for p in parts) == 2


def test_parquet_output_reads_back(tmp_path: Path) -> None:
    """Sanity of the helpers used above: a normal job still gives the model's values."""
    rows = text_rows(6)
    source = write_rows(tmp_path / "in.parquet", rows)
    run_embed_job(source, tmp_path / "out", DENSE, progress=False)
    assert_matches(pq.read_table(tmp_path / "out"), expected("dense", rows, 10_000))
