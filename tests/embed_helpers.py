"""Inputs and expected outputs for the embedding job tests, on the committed tiny fixtures."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from onnx_st import CrossEncoder, SentenceTransformer, SparseEncoder
from onnx_st.jobs.writer import OutputDir

from .conftest import fixture_dir, fixture_inputs

MODELS = {"dense": "dense-mean", "sparse": "sparse-max-relu", "cross": "cross-1label"}


def text_rows(n: int, name: str = "dense-mean", *, id_prefix: str | None = None) -> list[dict[str, Any]]:
    """``n`` rows ``{"id", "text"}`` cycling through a fixture's 12 texts (``""`` and a 300-word text among them)."""
    texts = fixture_inputs(name)
    return [{"id": f"{id_prefix}{i}" if id_prefix else i, "text": texts[i % len(texts)]} for i in range(n)]


def pair_rows(n: int, name: str = "cross-1label") -> list[dict[str, Any]]:
    """``n`` rows ``{"id", "query", "document"}`` cycling through a cross fixture's 12 pairs."""
    pairs = fixture_inputs(name)["pairs"]
    return [{"id": i, "query": pairs[i % len(pairs)][0], "document": pairs[i % len(pairs)][1]} for i in range(n)]


def rows_for(kind: str, n: int) -> list[dict[str, Any]]:
    """Input rows for a model kind."""
    return pair_rows(n, MODELS[kind]) if kind == "cross" else text_rows(n, MODELS[kind])


def write_rows(path: Path, rows: list[dict[str, Any]], fmt: str | None = None) -> Path:
    """Write ``rows`` as JSON Lines, CSV (keys of the first row as header; a missing key ends the row early)
    or Parquet, by ``fmt`` or the suffix of ``path``."""
    fmt = fmt or path.suffix.lstrip(".")
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif fmt == "csv":
        header = list(rows[0])
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for row in rows:
                cells = []
                for key in header:
                    if key not in row:
                        break
                    cells.append(row[key])
                writer.writerow(cells)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=7)
    return path


def load(kind: str, name: str | None = None) -> Any:
    """The fixture model of ``kind`` loaded with the runtime's own class."""
    cls = {"dense": SentenceTransformer, "sparse": SparseEncoder, "cross": CrossEncoder}[kind]
    return cls.from_dir(fixture_dir(name or MODELS[kind]))


def expected(kind: str, rows: list[dict[str, Any]], part_rows: int, *, batch_size: int = 32, name: str | None = None,
             **encode_kwargs: Any) -> dict[str, list[Any]]:
    """Output columns computed by calling ``encode``/``predict`` directly on each part's rows with a string text."""
    model = load(kind, name)
    out: dict[str, list[Any]] = {"id": []}
    for start in range(0, len(rows), part_rows):
        part = [r for r in rows[start:start + part_rows] if _good(kind, r)]
        out["id"] += [r["id"] for r in part]
        if not part:
            continue
        if kind == "dense":
            emb = model.encode([r["text"] for r in part], batch_size=batch_size, **encode_kwargs)
            out.setdefault("embedding", []).extend(list(emb))
        elif kind == "sparse":
            emb = model.encode([r["text"] for r in part], batch_size=batch_size, **encode_kwargs)
            out.setdefault("indices", []).extend(v.indices for v in emb)
            out.setdefault("values", []).extend(v.values for v in emb)
        else:
            scores = model.predict([(r["query"], r["document"]) for r in part], batch_size=batch_size,
                                   **encode_kwargs)
            out.setdefault("score", []).extend(list(scores))
    return out


def _good(kind: str, row: dict[str, Any]) -> bool:
    keys = ("query", "document") if kind == "cross" else ("text",)
    return all(isinstance(row.get(k), str) for k in keys)


def assert_matches(table: pa.Table, want: dict[str, list[Any]]) -> None:
    """Exact equality of every output column with the direct calls."""
    assert table.column("id").to_pylist() == want["id"]
    for name, values in want.items():
        if name == "id":
            continue
        got = table.column(name).to_pylist()
        assert len(got) == len(values), name
        for g, w in zip(got, values):
            assert np.array_equal(np.asarray(g, dtype=np.asarray(w).dtype), np.asarray(w)), name


def output(path: Path) -> pa.Table:
    """Every part of an output directory as one table."""
    return OutputDir(path).read_table()


def part_files(path: Path) -> dict[str, bytes]:
    """The bytes of every part file, by name."""
    return {p.name: p.read_bytes() for p in sorted(path.glob("part-*.parquet"))}
