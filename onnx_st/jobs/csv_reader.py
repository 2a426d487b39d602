"""CSV input: a header line, then one row per record, parsed strictly so that no record merges silently."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator

from ..errors import InputError
from . import deps
from .errors import JobError
from .ids import IdTyper, ids_array
from .readers import MISSING, InputScan, RawPart, Reader


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
