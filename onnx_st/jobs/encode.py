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

from onnx_st.base import model_class
from onnx_st.base.model import BaseModel, OutputColumn
from onnx_st.jobs import deps
from onnx_st.jobs.spec import JobOptions
from onnx_st.kinds import KINDS, KindName
from onnx_st.options import RuntimeOptions

OUTPUT_COLUMNS: dict[str, tuple[str, ...]] = {name: kind.output_columns for name, kind in KINDS.items()}


def load_job_model(model_dir: str | Path, kind: KindName, runtime: RuntimeOptions | None = None) -> BaseModel:
    """Load ``model_dir`` as ``kind`` with the job's ``runtime`` options."""
    return model_class(kind).from_dir(model_dir, options=runtime or RuntimeOptions())


def _arrow_type(column: OutputColumn) -> Any:
    pa = deps.pyarrow()
    value = pa.int32() if column.dtype == "int32" else pa.float32()
    if column.nesting == 0:
        return value
    inner = pa.list_(value, column.width if column.width is not None else -1)
    return inner if column.nesting == 1 else pa.list_(inner)


def output_fields(model: BaseModel) -> list[Any]:
    """Arrow fields of the output columns of ``model`` (:meth:`BaseModel.job_columns`)."""
    pa = deps.pyarrow()
    return [pa.field(column.name, _arrow_type(column)) for column in model.job_columns()]


def _fixed(matrix: np.ndarray) -> Any:
    pa = deps.pyarrow()
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), int(matrix.shape[1]))


def compute(model: BaseModel, options: JobOptions, texts: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Run the model on one batch of texts (``text``, or ``query`` and ``document``) and return NumPy results.

    Dense: ``embedding`` ``(n, dim)``; sparse: ``indptr``, ``indices``, ``values`` (CSR rows);
    cross: ``score`` ``(n,)`` or ``(n, labels)``; multi-vector: ``vectors_indptr`` and ``vectors``
    (every row's token vectors, concatenated). See :meth:`BaseModel.encode_job_batch`.
    """
    return model.encode_job_batch(texts, batch_size=options.batch_size, prompt_name=options.prompt_name,
                                  normalize=options.normalize)


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


def _split(indptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    rows = np.empty(len(indptr) - 1, dtype=object)
    for i in range(len(indptr) - 1):
        rows[i] = values[indptr[i]:indptr[i + 1]]
    return rows


def to_numpy(result: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`compute`'s results as batch columns for ``map_batches``'s NumPy batch format (CSR rows split)."""
    if "vectors_indptr" in result:
        return {"embeddings": _split(result["vectors_indptr"], result["vectors"])}
    if "indptr" in result:
        return {"indices": _split(result["indptr"], result["indices"]),
                "values": _split(result["indptr"], result["values"])}
    return dict(result)


def encode_table(model: BaseModel, options: JobOptions, table: Any, fields: list[Any] | None = None) -> Any:
    """``table`` (job column names) with the output columns appended."""
    pa = deps.pyarrow()
    fields = fields or output_fields(model)
    if table.num_rows:
        texts = {name: table.column(name).to_pylist() for name in options.value_columns}
        arrays = to_arrow(compute(model, options, texts), fields)
    else:
        arrays = {field.name: pa.array([], field.type) for field in fields}
    for field in fields:
        if field.name in table.column_names:
            table = table.drop_columns([field.name])
        table = table.append_column(field, arrays[field.name])
    return table
