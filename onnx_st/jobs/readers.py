"""Input files as fixed-size parts of rows: JSON Lines, CSV or Parquet, with a text (or pair) column and ids.

Part ``i`` holds input rows ``i * part_rows`` to ``(i + 1) * part_rows - 1``, whatever their content, so
the same input always splits the same way (CSV: :class:`CsvReader`). Values are kept as read (``None``,
numbers, :data:`MISSING`) for :mod:`onnx_st.jobs.badrows` to judge; ids take one Arrow type (:mod:`onnx_st.jobs.ids`).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from onnx_st.errors import InputError, foreign_errors
from onnx_st.jobs import deps
from onnx_st.jobs.errors import JobError
from onnx_st.jobs.ids import IdTyper, check_same_type, ids_array

InputFormat = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet")
_SUFFIXES: dict[str, InputFormat] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
                                     ".parquet": "parquet", ".pq": "parquet"}


class _Missing:
    """A value absent from its row (no such key, a short CSV line, an unreadable JSON line)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass
class RawPart:
    """One part of the input as read.

    Attributes:
        index: part number (``part-{index:05d}.parquet``).
        start: input row number of its first row.
        ids: Arrow array of the ids (the file's id type).
        values: per text column, the values as read.
        row_errors: offset in the part -> why the row could not be read at all.
    """

    index: int
    start: int
    ids: Any
    values: dict[str, list[Any]]
    row_errors: dict[int, str] = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        """Input rows in this part, bad ones included."""
        return len(self.ids)


@dataclass(frozen=True)
class InputScan:
    """What a first pass over the input found: its row count and the Arrow type of its ids."""

    rows: int
    id_type: Any
    id_column: str | None


def input_format(path: Path, fmt: str | None = None) -> InputFormat:
    """The format given, else the one the file suffix names (a directory means Parquet files)."""
    if fmt not in (None, "auto"):
        if fmt not in FORMATS:
            raise InputError(f"input format must be one of {FORMATS}, got {fmt!r}")
        return fmt  # type: ignore[return-value]
    if path.is_dir():
        return "parquet"
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise InputError(f"cannot tell the format of {path} from its suffix; pass --format jsonl, csv or parquet")
    return found


def input_files(path: Path, fmt: InputFormat) -> list[Path]:
    """The file, or the ``*.parquet`` files of a directory in name order."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".parquet", ".pq") and p.is_file())
        if fmt != "parquet" or not files:
            raise JobError(f"{path} is a directory without Parquet files; pass a file or a Parquet directory")
        return files
    if not path.is_file():
        raise JobError(f"input not found: {path}")
    return [path]


class Reader:
    """Reads one input in parts; subclasses know one format."""

    format: InputFormat

    def __init__(self, path: Path, columns: Sequence[str], id_column: str | None) -> None:
        self.path = path
        self.columns = tuple(columns)
        self.requested_id_column = id_column
        self.files = [path]
        self._scan: InputScan | None = None

    def scan(self) -> InputScan:
        """Count rows, check the columns and fix the id type (cached).

        Raises:
            InputError: a column is absent; JobError: the input cannot be read, or its ids mix types.
        """
        if self._scan is None:
            with foreign_errors(JobError, f"cannot read {self.path}"):
                self._scan = self._do_scan()
        return self._scan

    def _do_scan(self) -> InputScan:
        raise NotImplementedError

    def parts(self, part_rows: int) -> Iterator[RawPart]:
        """Every part in order (the last one may be shorter).

        Raises:
            JobError: the input cannot be read (a corrupt file, text that is not UTF-8).
        """
        with foreign_errors(JobError, f"cannot read {self.path}"):
            yield from self._parts(part_rows)

    def _parts(self, part_rows: int) -> Iterator[RawPart]:
        raise NotImplementedError

    def _check_columns(self, present: Sequence[str], where: str) -> str | None:
        """The id column to use; errors for absent text columns or an absent explicit id column."""
        missing = [c for c in self.columns if c not in present]
        if missing:
            raise InputError(f"column {missing[0]!r} not found in {where}; columns: {sorted(present)}")
        if self.requested_id_column is not None:
            if self.requested_id_column not in present:
                raise InputError(f"id column {self.requested_id_column!r} not found in {where}; "
                                 f"columns: {sorted(present)}")
            return self.requested_id_column
        return "id" if "id" in present else None


class JsonLinesReader(Reader):
    """One JSON object per line; blank lines are not rows; a line that is not an object is a bad row."""

    format = "jsonl"

    def _rows(self) -> Iterator[tuple[dict[str, Any] | None, str | None]]:
        with self.path.open("rb") as f:
            for raw in f:
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as exc:
                    yield None, f"invalid JSON ({exc.__class__.__name__})"
                    continue
                yield (row, None) if isinstance(row, dict) else (None, f"not a JSON object ({type(row).__name__})")

    def _do_scan(self) -> InputScan:
        rows, keys = 0, set[str]()
        ids = IdTyper(str(self.path), from_text=False)
        id_key = self.requested_id_column or "id"
        for row, _ in self._rows():
            if row is not None:
                keys.update(k for k in (*self.columns, id_key) if k in row)
                ids.add(rows, row.get(id_key))
            rows += 1
        if rows:
            id_column = self._check_columns(sorted(keys), f"any row of {self.path}")
        else:
            id_column = self.requested_id_column or None
        return InputScan(rows, ids.arrow_type() if id_column else deps.pyarrow().int64(), id_column)

    def _parts(self, part_rows: int) -> Iterator[RawPart]:
        scan = self.scan()
        batch: list[tuple[dict[str, Any] | None, str | None]] = []
        index = 0
        for item in self._rows():
            batch.append(item)
            if len(batch) == part_rows:
                yield self._part(index, index * part_rows, batch, scan)
                index, batch = index + 1, []
        if batch:
            yield self._part(index, index * part_rows, batch, scan)

    def _part(self, index: int, start: int, batch: list[tuple[dict[str, Any] | None, str | None]],
              scan: InputScan) -> RawPart:
        empty: dict[str, Any] = {}
        values = {c: [(row or empty).get(c, MISSING) for row, _ in batch] for c in self.columns}
        id_values = [(row or empty).get(scan.id_column, MISSING) if scan.id_column else None for row, _ in batch]
        errors = {i: error for i, (_, error) in enumerate(batch) if error is not None}
        return RawPart(index, start, ids_array(id_values, scan.id_type, start, scan.id_column), values, errors)


class ParquetReader(Reader):
    """A Parquet file, or a directory of Parquet files read in name order as one table."""

    format = "parquet"

    def __init__(self, path: Path, columns: Sequence[str], id_column: str | None) -> None:
        super().__init__(path, columns, id_column)
        self.files = input_files(path, "parquet")

    @staticmethod
    def _tables(path: Path, part_rows: int, columns: list[str]) -> Iterator[Any]:
        """The record batches of one file as tables; a corrupt file is a JobError naming it."""
        pa, pq = deps.pyarrow(), deps.parquet()
        with foreign_errors(JobError, f"cannot read the Parquet file {path}"):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=part_rows, columns=columns):
                yield pa.Table.from_batches([batch]).select(columns)

    def _do_scan(self) -> InputScan:
        pq = deps.parquet()
        schemas = []
        for f in self.files:
            with foreign_errors(JobError, f"cannot read the Parquet file {f}"):
                schemas.append(pq.read_schema(f))
        names = schemas[0].names
        id_column = self._check_columns(names, str(self.files[0]))
        for f, schema in zip(self.files[1:], schemas[1:]):
            self._check_columns(schema.names, str(f))
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)
        id_type = (check_same_type([(str(f), schema.field(id_column).type) for f, schema in zip(self.files, schemas)],
                                   id_column) if id_column else deps.pyarrow().int64())
        return InputScan(rows, id_type, id_column)

    def _parts(self, part_rows: int) -> Iterator[RawPart]:
        pa = deps.pyarrow()
        scan = self.scan()
        wanted = list(dict.fromkeys([*self.columns, *([scan.id_column] if scan.id_column else [])]))
        pending: list[Any] = []
        buffered, index = 0, 0

        def part(tables: list[Any]) -> RawPart:
            table = pa.concat_tables(tables).combine_chunks()
            start = index * part_rows
            n = table.num_rows
            ids = (table.column(scan.id_column).cast(scan.id_type).combine_chunks() if scan.id_column
                   else pa.array(range(start, start + n), pa.int64()))
            values = {c: table.column(c).to_pylist() for c in self.columns}
            return RawPart(index, start, ids, values)

        for f in self.files:
            for read in self._tables(f, part_rows, wanted):
                table = read
                while table.num_rows:
                    take = min(part_rows - buffered, table.num_rows)
                    pending.append(table.slice(0, take))
                    buffered += take
                    table = table.slice(take)
                    if buffered == part_rows:
                        yield part(pending)
                        index, pending, buffered = index + 1, [], 0
        if buffered:
            yield part(pending)


def open_reader(path: str | Path, columns: Sequence[str], id_column: str | None = None,
                fmt: str | None = None) -> Reader:
    """A reader for ``path`` in ``fmt`` (``None``/``auto``: from the suffix).

    Raises:
        InputError: unknown format; JobError: the input does not exist.
    """
    path = Path(path).expanduser()
    found = input_format(path, fmt)
    if found == "parquet":
        return ParquetReader(path, columns, id_column)
    input_files(path, found)
    if found == "csv":
        return CsvReader(path, columns, id_column)
    return JsonLinesReader(path, columns, id_column)


class CsvReader(Reader):
    """A header line, then one row per record (RFC 4180 quoting, parsed strictly; UTF-8, with or without a BOM).

    Every cell is text: an empty cell is the empty string; a cell past the end of a short row is missing.
    A record the parser cannot read (a stray or unterminated quote, which would merge the next lines into
    a text) or one with more cells than the header is a bad row naming its lines. Ids are int64 when every
    id cell is an integer, else strings.
    """

    format = "csv"

    def _records(self) -> Iterator[tuple[list[str], str | None]]:
        """``(cells, None)`` per record after the header, or ``([], why)`` for one that cannot be read."""
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        with self.path.open("r", encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            width = None
            while True:
                first_line = reader.line_num + 1
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield [], f"unparseable CSV at lines {first_line}-{reader.line_num} ({exc})"
                    continue
                except UnicodeDecodeError as exc:
                    raise JobError(f"{self.path} is not UTF-8 text (it holds byte {exc.object[exc.start]:#04x}, "
                                   "as latin-1 or cp1252 files do); re-encode it as UTF-8") from exc
                if not record:
                    continue
                if width is None:
                    width = len(record)
                elif len(record) > width:
                    yield [], (f"{len(record)} cells where the header has {width} (lines {first_line}-"
                               f"{reader.line_num}: an unquoted separator or a merged record)")
                    continue
                yield record, None

    def _header(self, records: Iterator[tuple[list[str], str | None]]) -> list[str]:
        header, error = next(records, (None, None))
        if error is not None:
            raise InputError(f"the header of {self.path} cannot be read: {error}")
        if header is None:
            raise InputError(f"{self.path} is empty: a CSV input needs a header line")
        return header

    def _do_scan(self) -> InputScan:
        records = self._records()
        header = self._header(records)
        id_column = self._check_columns(header, f"the header of {self.path}")
        ids = IdTyper(str(self.path), from_text=True)
        position = header.index(id_column) if id_column else -1
        rows = 0
        for record, _ in records:
            if position >= 0:
                ids.add(rows, record[position] if position < len(record) else None)
            rows += 1
        return InputScan(rows, ids.arrow_type() if id_column else deps.pyarrow().int64(), id_column)

    def _parts(self, part_rows: int) -> Iterator[RawPart]:
        scan = self.scan()
        records = self._records()
        header = self._header(records)
        positions = {c: header.index(c) for c in self.columns}
        id_position = header.index(scan.id_column) if scan.id_column else -1
        batch: list[tuple[list[str], str | None]] = []
        index = 0

        def part(rows: list[tuple[list[str], str | None]]) -> RawPart:
            start = index * part_rows
            values = {c: [r[p] if p < len(r) else MISSING for r, _ in rows] for c, p in positions.items()}
            ids = [r[id_position] if 0 <= id_position < len(r) else None for r, _ in rows]
            errors = {i: error for i, (_, error) in enumerate(rows) if error is not None}
            return RawPart(index, start, ids_array(ids, scan.id_type, start, scan.id_column), values, errors)

        for item in records:
            batch.append(item)
            if len(batch) == part_rows:
                yield part(batch)
                index, batch = index + 1, []
        if batch:
            yield part(batch)
