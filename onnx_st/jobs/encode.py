"""One model call per batch of a job, as Arrow columns: the code both engines and the Ray callable share.

Output columns: dense ``embedding`` (fixed-size list of float32); sparse ``indices`` (list of int32,
ascending) and ``values`` (list of float32); cross ``score`` (float32, or a fixed-size list of float32
per label for models with several labels); multi-vector ``embeddings`` (a list of token vectors per
row, each a fixed-size list of float32: Qdrant's multivector shape). Multi-vector rows are encoded as
documents (``encode_document``), as queries when the job's prompt name is ``query``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from onnx_st.base.model import BaseModel
from onnx_st.jobs import deps
from onnx_st.jobs.spec import JobOptions, Kind
from onnx_st.kinds import KINDS, get_kind
from onnx_st.options import RuntimeOptions

OUTPUT_COLUMNS: dict[str, tuple[str, ...]] = {name: kind.output_columns for name, kind in KINDS.items()}


def load_model(model_dir: str | Path, kind: Kind, *, file_name: str | None = None,
               threads: int | None = None, runtime: RuntimeOptions | None = None) -> BaseModel:
    """Load ``model_dir`` as ``kind`` with ``runtime`` options; ``file_name`` and ``threads`` (intra-op
    threads of each run, inter-op 1) override them."""
    options = (runtime or RuntimeOptions()).with_overrides(file_name=file_name)
    if threads is not None:
        options = options.with_overrides(intra_op_num_threads=int(threads), inter_op_num_threads=1)
    return get_kind(kind).front_class.from_dir(model_dir, options=options)


def output_fields(model: BaseModel, kind: Kind) -> list[Any]:
    """Arrow fields of the output columns of ``model``."""
    pa = deps.pyarrow()
    if kind == "dense":
        dim = model.get_embedding_dimension()  # type: ignore[attr-defined]
        return [pa.field("embedding", pa.list_(pa.float32(), int(dim or 0)))]
    if kind == "sparse":
        return [pa.field("indices", pa.list_(pa.int32())), pa.field("values", pa.list_(pa.float32()))]
    if kind == "multi-vector":
        dim = model.get_embedding_dimension()  # type: ignore[attr-defined]
        return [pa.field("embeddings", pa.list_(pa.list_(pa.float32(), int(dim or 0))))]
    labels = int(getattr(model, "num_labels", 1))
    return [pa.field("score", pa.float32() if labels == 1 else pa.list_(pa.float32(), labels))]


def _fixed(matrix: np.ndarray) -> Any:
    pa = deps.pyarrow()
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), int(matrix.shape[1]))


def compute(model: BaseModel, kind: Kind, options: JobOptions, texts: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Run the model on one batch of texts (``text``, or ``query`` and ``document``) and return NumPy results.

    Dense: ``embedding`` ``(n, dim)``; sparse: ``indptr``, ``indices``, ``values`` (CSR rows);
    cross: ``score`` ``(n,)`` or ``(n, labels)``; multi-vector: ``vectors_indptr`` and ``vectors``
    (every row's token vectors, concatenated).
    """
    common: dict[str, Any] = {"batch_size": options.batch_size, "prompt_name": options.prompt_name,
                              "show_progress_bar": False}
    if kind == "dense":
        emb = model.encode(texts["text"], normalize_embeddings=options.normalize, **common)  # type: ignore[attr-defined]
        return {"embedding": np.asarray(emb, dtype=np.float32)}
    if kind == "sparse":
        sparse = model.encode(texts["text"], **common)  # type: ignore[attr-defined]
        return {"indptr": sparse.indptr, "indices": sparse.indices, "values": sparse.values}
    if kind == "multi-vector":
        encode = model.encode_query if options.prompt_name == "query" else model.encode_document  # type: ignore
        rows = encode(texts["text"], normalize_embeddings=options.normalize, **common)
        dim = int(model.get_embedding_dimension() or 0)  # type: ignore[attr-defined]
        indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        vectors = np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)
        return {"vectors_indptr": indptr, "vectors": vectors.astype(np.float32, copy=False)}
    pairs = list(zip(texts["query"], texts["document"]))
    labels = int(getattr(model, "num_labels", 1))
    if not pairs:
        return {"score": np.zeros((0,) if labels == 1 else (0, labels), np.float32)}
    scores = np.asarray(model.predict(pairs, **common), dtype=np.float32)  # type: ignore[attr-defined]
    return {"score": scores}


def to_arrow(result: dict[str, np.ndarray], fields: list[Any]) -> dict[str, Any]:
    """:func:`compute`'s NumPy results as Arrow arrays of the output ``fields``."""
    pa = deps.pyarrow()
    out: dict[str, Any] = {}
    for field in fields:
        if field.name in ("indices", "values"):
            indptr = np.asarray(result["indptr"], dtype=np.int64)
            offsets = pa.array(indptr.astype(np.int32 if indptr[-1] < 2**31 else np.int64))
            dtype = np.int32 if field.name == "indices" else np.float32
            values = pa.array(np.asarray(result[field.name], dtype=dtype))
            array = (pa.ListArray if offsets.type == pa.int32() else pa.LargeListArray).from_arrays(offsets, values)
            out[field.name] = array.cast(field.type)
        elif field.name == "embeddings":
            indptr = np.asarray(result["vectors_indptr"], dtype=np.int64)
            offsets = pa.array(indptr.astype(np.int32 if indptr[-1] < 2**31 else np.int64))
            array = (pa.ListArray if offsets.type == pa.int32() else pa.LargeListArray).from_arrays(
                offsets, _fixed(result["vectors"]))
            out[field.name] = array.cast(field.type)
        elif pa.types.is_fixed_size_list(field.type):
            out[field.name] = _fixed(result[field.name])
        else:
            out[field.name] = pa.array(np.asarray(result[field.name], dtype=np.float32))
    return out


def to_numpy(result: dict[str, np.ndarray], kind: Kind) -> dict[str, np.ndarray]:
    """:func:`compute`'s results as batch columns for ``map_batches``'s NumPy batch format."""
    if kind == "multi-vector":
        indptr, vectors = result["vectors_indptr"], result["vectors"]
        embeddings = np.empty(len(indptr) - 1, dtype=object)
        for i in range(len(indptr) - 1):
            embeddings[i] = vectors[indptr[i]:indptr[i + 1]]
        return {"embeddings": embeddings}
    if kind != "sparse":
        return dict(result)
    indptr = result["indptr"]
    rows = range(len(indptr) - 1)
    indices, values = np.empty(len(rows), dtype=object), np.empty(len(rows), dtype=object)
    for i in rows:
        indices[i] = result["indices"][indptr[i]:indptr[i + 1]]
        values[i] = result["values"][indptr[i]:indptr[i + 1]]
    return {"indices": indices, "values": values}


def encode_table(model: BaseModel, kind: Kind, options: JobOptions, table: Any,
                 fields: list[Any] | None = None) -> Any:
    """``table`` (job column names) with the output columns appended."""
    pa = deps.pyarrow()
    fields = fields or output_fields(model, kind)
    if table.num_rows:
        texts = {name: table.column(name).to_pylist() for name in options.value_columns}
        arrays = to_arrow(compute(model, kind, options, texts), fields)
    else:
        arrays = {field.name: pa.array([], field.type) for field in fields}
    for field in fields:
        if field.name in table.column_names:
            table = table.drop_columns([field.name])
        table = table.append_column(field, arrays[field.name])
    return table
