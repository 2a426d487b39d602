"""Rows without a usable text: found per part, reported with their ids, skipped or failing the job.

A value is usable when it is a ``str`` (the empty string included). Missing keys or cells, nulls,
numbers, lists and unreadable lines are bad rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onnx_st.jobs import deps
from onnx_st.jobs.errors import BadRowsError
from onnx_st.jobs.readers import MISSING, RawPart
from onnx_st.jobs.spec import JobOptions

REPORT_IDS = 10


@dataclass
class PreparedPart:
    """A part ready to encode.

    Attributes:
        index, start, num_rows: part number, first input row, input rows (bad ones included).
        table: the good rows: ``_part`` (int32), ``_row`` (int64 input row), ``id`` and the text
            columns under their job names (``text``, or ``query`` and ``document``).
        rejected: one record per bad row: ``row``, ``id``, ``column``, ``reason``.
    """

    index: int
    start: int
    num_rows: int
    table: Any
    rejected: list[dict[str, Any]]


def reason(value: Any) -> str | None:
    """Why ``value`` cannot be encoded, or ``None`` when it can."""
    if isinstance(value, str):
        return None
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    return f"not a string ({type(value).__name__})"


def screen(raw: RawPart, options: JobOptions) -> PreparedPart:
    """Split a part into the good rows (an Arrow table) and the records of its bad rows."""
    pa = deps.pyarrow()
    rejected: list[dict[str, Any]] = []
    keep: list[int] = []
    ids = raw.ids.to_pylist()
    columns = list(zip(options.text_columns, options.value_columns))
    for i in range(raw.num_rows):
        why, column = raw.row_errors.get(i), None
        if why is None:
            for source, _ in columns:
                why = reason(raw.values[source][i])
                if why is not None:
                    column = source
                    break
        if why is None:
            keep.append(i)
        else:
            rejected.append({"row": raw.start + i, "id": ids[i], "column": column, "reason": why})
    take = pa.array(keep, pa.int64())
    data = {
        "_part": pa.array([raw.index] * len(keep), pa.int32()),
        "_row": pa.array([raw.start + i for i in keep], pa.int64()),
        "id": raw.ids.take(take),
    }
    for source, name in columns:
        values = raw.values[source]
        data[name] = pa.array([values[i] for i in keep], pa.string())
    return PreparedPart(raw.index, raw.start, raw.num_rows, pa.table(data), rejected)


def describe(rejected: list[dict[str, Any]], limit: int = REPORT_IDS, total: int | None = None) -> str:
    """``3 bad rows (ids: a (null), b (missing), 7 (not a string (int)))``, the first ``limit`` named.

    A row without an id is named by its input row number (``row 12``); ``total`` counts rows beyond
    those in ``rejected``.
    """
    count = len(rejected) if total is None else total
    shown = rejected[:limit]
    names = ", ".join(f"{r['id'] if r['id'] is not None else 'row ' + str(r['row'])} ({r['reason']})"
                      for r in shown)
    more = f", and {count - len(shown)} more" if count > len(shown) else ""
    return f"{count} bad row{'s' if count != 1 else ''} (ids: {names}{more})"


def fail_on(part: PreparedPart) -> BadRowsError:
    """The error of ``--on-bad-row fail`` for a part with bad rows."""
    last = part.start + part.num_rows - 1
    return BadRowsError(f"part {part.index} (input rows {part.start}-{last}) has {describe(part.rejected)}; "
                        "nothing of that part was written, finished parts are kept. Run again with "
                        "--on-bad-row skip to resume and skip them", part.rejected)
