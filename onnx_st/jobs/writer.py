"""The output directory: Parquet parts written atomically, the manifest, and the rejected rows.

Layout::

    OUTPUT/_manifest.json          input, model and options fingerprints; status; summary when complete
    OUTPUT/part-00000.parquet      rows of input part 0 in input order: id + output columns
    OUTPUT/_rejected.jsonl         every bad row, {"row", "id", "column", "reason"}, when the job completes

A part file appears only complete (written to a hidden temporary name, flushed, then renamed), so a
part that exists is finished; its bad rows travel in its Parquet metadata (``onnx_st.rejected``).
Names starting with ``_`` or ``.`` are what Parquet readers skip, so ``pyarrow.parquet.read_table(OUTPUT)``
and ``ray.data.read_parquet(OUTPUT)`` read the parts alone.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from onnx_st.errors import foreign_errors
from onnx_st.jobs import deps
from onnx_st.jobs.errors import JobError
from onnx_st.jobs.manifest import MANIFEST

PART_PATTERN = re.compile(r"part-(\d{5,})\.parquet")
REJECTED = "_rejected.jsonl"
_TMP = ".tmp-"
_META_PART, _META_ROWS, _META_REJECTED = b"onnx_st.part", b"onnx_st.rows", b"onnx_st.rejected"


def part_name(index: int) -> str:
    """``part-00012.parquet``."""
    return f"part-{index:05d}.parquet"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace_atomically(target: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, flush it to disk, then rename it to ``target``.

    Raises:
        JobError: the file cannot be written (a read-only directory, a full disk): ``target`` is untouched.
    """
    tmp = target.with_name(f".{target.name}{_TMP}{os.getpid()}")
    with foreign_errors(JobError, f"cannot write {target}"):
        try:
            write(tmp)
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
    _fsync_dir(target.parent)


class OutputDir:
    """An output directory of one job."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def prepare(self) -> None:
        """Create the directory; refuse a non-empty one that no job started; drop stale temporary files.

        Raises:
            JobError: the path is a file, or a non-empty directory without a manifest.
        """
        if self.path.exists() and not self.path.is_dir():
            raise JobError(f"output {self.path} exists and is not a directory")
        with foreign_errors(JobError, f"cannot use the output directory {self.path}"):
            self.path.mkdir(parents=True, exist_ok=True)
            for stale in self.path.iterdir():
                if _TMP in stale.name and stale.is_file():
                    stale.unlink(missing_ok=True)
        if not (self.path / MANIFEST).exists() and any(self.path.iterdir()):
            raise JobError(f"output directory {self.path} is not empty and holds no {MANIFEST}; "
                           "give a new or empty directory")

    def finished(self) -> set[int]:
        """Numbers of the parts already written."""
        return {int(m.group(1)) for p in self.path.iterdir() if (m := PART_PATTERN.fullmatch(p.name))}

    def part_path(self, index: int) -> Path:
        """Where part ``index`` is written."""
        return self.path / part_name(index)

    def write_part(self, index: int, start: int, num_rows: int, table: Any, rejected: list[dict[str, Any]]) -> Path:
        """Write one finished part (``table``: ``id`` and the output columns) atomically."""
        pq = deps.parquet()
        metadata = {_META_PART: str(index).encode(), _META_ROWS: f"{start}-{start + num_rows - 1}".encode(),
                    _META_REJECTED: json.dumps(rejected, ensure_ascii=False).encode()}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
        target = self.part_path(index)
        _replace_atomically(target, lambda tmp: pq.write_table(table, tmp))
        return target

    def rejected(self, index: int) -> list[dict[str, Any]]:
        """The bad rows recorded in part ``index``.

        Raises:
            JobError: the part file is unreadable (remove it and rerun to write it again).
        """
        path = self.part_path(index)
        with foreign_errors(JobError, f"cannot read {path} (remove it and rerun to write it again)"):
            metadata = deps.parquet().read_schema(path).metadata or {}
            return list(json.loads(metadata.get(_META_REJECTED, b"[]")))

    def write_rejected(self, parts: int) -> tuple[int, list[dict[str, Any]]]:
        """Gather every part's bad rows into ``_rejected.jsonl`` (input order); the count and the first few."""
        rows: list[dict[str, Any]] = []
        for index in range(parts):
            rows.extend(self.rejected(index))

        def write(tmp: Path) -> None:
            with tmp.open("w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")

        target = self.path / REJECTED
        if rows:
            _replace_atomically(target, write)
        else:
            target.unlink(missing_ok=True)
        return len(rows), rows[:20]

    def write_manifest(self, data: dict[str, Any]) -> None:
        """Save the manifest atomically."""
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        _replace_atomically(self.path / MANIFEST, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def read_table(self) -> Any:
        """Every part in order as one Arrow table (for checks and small outputs)."""
        pa, pq = deps.pyarrow(), deps.parquet()
        parts = sorted(self.finished())
        tables = [pq.read_table(self.part_path(i)).replace_schema_metadata(None) for i in parts]
        if not tables:
            raise JobError(f"{self.path} has no parts")
        return pa.concat_tables(tables)
