"""Ids of an input: one Arrow type per job, the type the ids have in the input.

JSON ids keep their JSON type (integers -> int64, strings -> string, other numbers -> float64); a mix
of types is refused naming both, so ``1`` and ``"1"`` never collide as ``"1"``. CSV cells are text: ids
are int64 when every id cell is an integer, else strings. Null and missing ids stay null.
"""

from __future__ import annotations

import re
from typing import Any

from onnx_st.jobs import deps
from onnx_st.jobs.errors import JobError

_INT_TEXT = re.compile(r"-?(0|[1-9][0-9]*)")
INT64 = (-(2**63), 2**63 - 1)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer" if INT64[0] <= value <= INT64[1] else "integer beyond int64"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


_ARROW_KINDS = {"integer": "int64", "string": "string", "number": "float64"}


class IdTyper:
    """Watches the ids of one input and names their Arrow type.

    Args:
        where: the input, for messages.
        from_text: CSV (every cell is text: integer-looking ids become int64).
    """

    def __init__(self, where: str, from_text: bool) -> None:
        self.where = where
        self.from_text = from_text
        self.all_int = True
        self.first: dict[str, tuple[int, Any]] = {}  # JSON kind -> (row, id) of its first id

    def add(self, row: int, value: Any) -> None:
        """Take the id of input row ``row`` (``None`` or a missing marker: no id)."""
        if value is None or not isinstance(value, (str, int, float, list, dict)):
            return
        if self.from_text:
            if self.all_int and isinstance(value, str):
                self.all_int = _INT_TEXT.fullmatch(value) is not None and INT64[0] <= int(value) <= INT64[1]
            return
        kind = _json_kind(value)
        if kind not in self.first:
            self.first[kind] = (row, value)
            if kind not in _ARROW_KINDS:
                raise JobError(f"{self.where}: the id of row {row} is a {kind} ({value!r:.40}); ids must be "
                               "integers, strings or numbers")
            if len(self.first) > 1:
                (k1, (r1, v1)), (k2, (r2, v2)) = list(self.first.items())[:2]
                raise JobError(f"{self.where}: ids of different types: {k1} (row {r1}: {v1!r:.40}) and {k2} "
                               f"(row {r2}: {v2!r:.40}); give every id the same type")

    def arrow_type(self) -> Any:
        """int64, string or float64."""
        pa = deps.pyarrow()
        if self.from_text:
            return pa.int64() if self.all_int else pa.string()
        kind = next(iter(self.first), "integer")
        return {"integer": pa.int64(), "string": pa.string(), "number": pa.float64()}[kind]


def ids_array(values: list[Any], id_type: Any, start: int, id_column: str | None) -> Any:
    """Arrow ids of a JSONL/CSV part in the input's id type; row numbers without an id column."""
    pa = deps.pyarrow()
    if id_column is None:
        return pa.array(range(start, start + len(values)), pa.int64())
    present = [v if isinstance(v, (str, int, float)) else None for v in values]
    if pa.types.is_integer(id_type):
        return pa.array([None if v is None else int(v) for v in present], id_type)
    if pa.types.is_floating(id_type):
        return pa.array([None if v is None else float(v) for v in present], id_type)
    return pa.array(present, pa.string())


def check_same_type(types: list[tuple[str, Any]], column: str) -> Any:
    """The one id type of several Parquet files; files whose id columns differ are refused naming both."""
    first_file, first_type = types[0]
    for file, id_type in types[1:]:
        if id_type != first_type:
            raise JobError(f"id column {column!r} has type {first_type} in {first_file} but {id_type} in {file}; "
                           "give every file the same id type")
    return first_type
