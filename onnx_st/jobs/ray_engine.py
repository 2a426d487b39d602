"""Ray Data: :class:`EmbedBatches` for ``Dataset.map_batches``, and the job engine built on it.

In a pipeline of your own::

    import ray
    from onnx_st.jobs.ray_engine import EmbedBatches

    ds = ray.data.read_parquet("corpus/")
    ds = ds.map_batches(EmbedBatches, fn_constructor_kwargs={"model_dir": "/models/minilm"},
                        batch_size=1024, batch_format="pyarrow", num_cpus=2,
                        compute=ray.data.ActorPoolStrategy(size=4))
    ds.write_parquet("embeddings/")

Each actor loads the model once and runs ONNX Runtime with as many intra-op threads as CPUs Ray gave it.
The job engine hands Ray one block per input part and uses whole blocks as batches, so every part is
encoded exactly as the local engine encodes it and the outputs are identical. The local cluster it
starts when given no address listens on 127.0.0.1 only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from onnx_st.jobs import deps
from onnx_st.jobs.badrows import PreparedPart, describe, reason
from onnx_st.jobs.encode import compute, load_job_model, output_fields, to_arrow, to_numpy
from onnx_st.jobs.errors import BadRowsError, JobError
from onnx_st.jobs.ray_cluster import connect, disconnect, gcs_address, session_threads
from onnx_st.jobs.spec import JobOptions, detect_kind
from onnx_st.options import RuntimeOptions

_RAY_LOGGERS = ("ray.data", "ray")
_NODE_COLUMN = "_node"


def assigned_cpus(fallback: float | None = None) -> int | None:
    """Whole CPUs Ray assigned to the current actor or task (at least 1), else ``fallback`` (rounded down, >= 1)."""
    cpus: float | None = None
    try:
        import ray

        if ray.is_initialized():
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except (ImportError, RuntimeError, AttributeError, AssertionError):  # no ray, or not in a worker
        cpus = None
    value = cpus or fallback
    return max(1, int(value)) if value else None


class EmbedBatches:
    """A callable class for ``Dataset.map_batches``: appends embeddings (or scores) to each batch.

    Args:
        model_dir: the model directory, readable at this path wherever the actor runs.
        kind: ``auto`` (from the directory), ``dense``, ``sparse`` or ``cross``.
        text_column: column of the texts (dense, sparse); ``query_column``/``document_column``: of the
            pairs (cross); ``id_column``: named in bad-row errors when the batch has it.
        batch_size: texts per ONNX run inside one Ray batch (sorted by length first).
        normalize, prompt_name, file_name: as in ``onnx-st embed``.
        num_cpus: ONNX Runtime threads when Ray reports no CPU assignment (outside an actor).
        runtime: :meth:`RuntimeOptions.to_dict` of the model's runtime options (provider, budgets...), passed
            by value; its threads are replaced by the CPUs Ray assigns.
        on_bad_row: ``fail`` (raise :class:`~onnx_st.jobs.errors.BadRowsError`) or ``skip`` (drop
            those rows from the returned batch) for null, missing or non-string texts.

    Added columns: dense ``embedding``; sparse ``indices`` and ``values``; cross ``score``. Batches in
    ``pyarrow`` format get Arrow columns (fixed-size lists for dense), NumPy batches get arrays.
    """

    def __init__(self, model_dir: str | Path, kind: str = "auto", *, text_column: str = "text",
                 query_column: str = "query", document_column: str = "document", id_column: str = "id",
                 batch_size: int = 32, normalize: bool = False, prompt_name: str | None = None,
                 file_name: str | None = None, num_cpus: float | None = None, on_bad_row: str = "fail",
                 runtime: dict[str, Any] | None = None) -> None:
        if on_bad_row not in ("skip", "fail"):
            raise ValueError(f"on_bad_row must be 'skip' or 'fail', got {on_bad_row!r}")
        resolved = detect_kind(model_dir) if kind == "auto" else kind
        self.options = JobOptions(kind=resolved, text_column=text_column, query_column=query_column,  # type: ignore[arg-type]
                                  document_column=document_column, batch_size=batch_size, normalize=normalize,
                                  prompt_name=prompt_name)
        self.id_column = id_column
        self.on_bad_row = on_bad_row
        self.threads = assigned_cpus(num_cpus)
        options = (RuntimeOptions.from_dict(runtime) if runtime else RuntimeOptions()).with_overrides(
            file_name=file_name)
        if self.threads is not None:  # the actor's CPUs, shared by its parallel runs (else ONNX Runtime's default)
            options = options.with_overrides(intra_op_num_threads=max(1, self.threads // options.parallel_runs),
                                             inter_op_num_threads=1)
        self.model = load_job_model(model_dir, self.options.kind, options)
        self.fields = output_fields(self.model)

    @property
    def kind(self) -> str:
        """``dense``, ``sparse`` or ``cross``."""
        return self.options.kind

    def __call__(self, batch: Any) -> Any:
        """Encode one batch (``pyarrow.Table`` or ``dict[str, np.ndarray]``) and return it with the new columns."""
        pa = deps.pyarrow()
        arrow = isinstance(batch, pa.Table)
        sources = self.options.text_columns
        if arrow:
            columns = {s: batch.column(s).to_pylist() for s in sources}
        else:
            columns = {s: [v.item() if isinstance(v, np.generic) else v for v in batch[s]] for s in sources}
        n = len(next(iter(columns.values()))) if columns else 0
        bad = [i for i in range(n) if any(reason(columns[s][i]) for s in sources)]
        if bad:
            batch, columns = self._drop(batch, columns, bad, arrow)
        texts = {name: columns[source] for source, name in zip(sources, self.options.value_columns)}
        result = compute(self.model, self.options, texts)
        if not arrow:
            return {**batch, **to_numpy(result)}
        arrays = to_arrow(result, self.fields)
        for field in self.fields:
            if field.name in batch.column_names:
                batch = batch.drop_columns([field.name])
            batch = batch.append_column(field, arrays[field.name])
        return batch

    def _drop(self, batch: Any, columns: dict[str, list[Any]], bad: list[int], arrow: bool) -> tuple[Any, Any]:
        """Fail on bad rows, or remove them from the batch and its text columns."""
        has_ids = self.id_column in (batch.column_names if arrow else batch)
        ids = (batch.column(self.id_column).to_pylist() if arrow else list(batch[self.id_column])) if has_ids else None
        rejected = [{"row": i, "id": ids[i] if ids else None,
                     "reason": next(r for s in columns if (r := reason(columns[s][i])))} for i in bad]
        if self.on_bad_row == "fail":
            raise BadRowsError(f"batch has {describe(rejected)}", rejected)
        drop = set(bad)
        keep = [i for i in range(len(next(iter(columns.values())))) if i not in drop]
        columns = {s: [v[i] for i in keep] for s, v in columns.items()}
        if arrow:
            return batch.take(deps.pyarrow().array(keep, deps.pyarrow().int64())), columns
        index = np.asarray(keep, dtype=np.int64)
        return {k: np.asarray(v)[index] for k, v in batch.items()}, columns


class _PartEncoder(EmbedBatches):
    """:class:`EmbedBatches` that also tags each block with the Ray node that encoded it (``_node``)."""

    def __call__(self, batch: Any) -> Any:
        out = super().__call__(batch)
        pa = deps.pyarrow()
        node = deps.ray().get_runtime_context().get_node_id()
        tag = pa.DictionaryArray.from_arrays(pa.array(np.zeros(out.num_rows, dtype=np.int8)), pa.array([node]))
        return out.append_column(_NODE_COLUMN, tag)


def _split_by_part(block: Any) -> list[tuple[int, Any]]:
    """The rows of an output block per part number (a block normally holds one part)."""
    numbers = block.column("_part").to_numpy()
    found = np.unique(numbers)
    if len(found) == 1:
        return [(int(found[0]), block)]
    pa = deps.pyarrow()
    return [(int(i), block.take(pa.array(np.flatnonzero(numbers == i)))) for i in found]


def _write_parts(blocks: Iterator[Any], pending: dict[int, PreparedPart],
                 write: Callable[[PreparedPart, Any], None]) -> tuple[Any, dict[str, int]]:
    """``write`` each pending part once all its rows are back (removing it from ``pending``).

    Returns the schema of the blocks (``None`` if none had rows) and the parts written per Ray node.
    """
    pa = deps.pyarrow()
    schema: Any = None
    received: dict[int, list[Any]] = {}
    counts: dict[int, int] = {}
    by_node: dict[str, int] = {}
    for block in blocks:
        if not block.num_rows:
            continue
        if schema is None:
            schema = block.schema
        for index, rows in _split_by_part(block):
            received.setdefault(index, []).append(rows)
            counts[index] = counts.get(index, 0) + rows.num_rows
            part = pending[index]
            if counts[index] == part.num_rows - len(part.rejected):
                table = pa.concat_tables(received.pop(index))
                for node in table.column(_NODE_COLUMN).unique().to_pylist():
                    by_node[node] = by_node.get(node, 0) + 1
                write(part, table)
                del pending[index]
    return schema, dict(sorted(by_node.items()))


class _QuietRay:
    """Ray Data's own progress bars and INFO lines off for the duration of a job (the job has its own bar)."""

    def __init__(self, context: Any) -> None:
        self.context = context

    def __enter__(self) -> None:
        self.saved_bars = self.context.enable_progress_bars
        self.saved_levels = {name: logging.getLogger(name).level for name in _RAY_LOGGERS}
        for name in _RAY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        self.context.enable_progress_bars = False

    def __exit__(self, *exc: object) -> None:
        self.context.enable_progress_bars = self.saved_bars
        for name, level in self.saved_levels.items():
            logging.getLogger(name).setLevel(level)


def run_on_ray(feed: Iterable[PreparedPart], write: Callable[[PreparedPart, Any], None], *, model_dir: Path,
               options: JobOptions, address: str | None = None, actors: int | None = None,
               cpus_per_actor: float = 1.0, runtime: RuntimeOptions | None = None) -> dict[str, Any]:
    """Encode the parts on Ray Data actors and ``write`` each as soon as all its rows are back.

    Uses the running Ray session, else connects to ``address`` (``None``: starts a local cluster on
    127.0.0.1, shut down at the end). Parts are read here, on the driver, and put in the object store
    one block per part. Returns the engine details: ``address`` (the cluster's GCS), ``actors``,
    ``cpus_per_actor``, ``cluster_cpus``, ``connect_seconds`` and ``parts_by_node`` (parts encoded
    per Ray node ID).

    Raises:
        JobError: a part came back incomplete.
    """
    ray = deps.ray()
    pa = deps.pyarrow()
    if cpus_per_actor <= 0:
        raise JobError(f"cpus_per_actor must be positive, got {cpus_per_actor}")
    info: dict[str, Any] = {}
    connect_started = time.perf_counter()
    own_session = connect(ray, address)
    ray_threads = session_threads()
    info["connect_seconds"] = round(time.perf_counter() - connect_started, 3)
    info["address"] = gcs_address(ray)
    try:
        pending: dict[int, PreparedPart] = {}
        refs, empty = [], []
        for part in feed:
            if part.table.num_rows:
                refs.append(ray.put(part.table))
                pending[part.index] = part
                part.table = part.table.slice(0, 0)  # the rows now live in the object store
            else:
                empty.append(part)
        cluster_cpus = float(ray.cluster_resources().get("CPU", 1.0))
        size = actors or max(1, int(cluster_cpus // cpus_per_actor))
        size = max(1, min(size, len(refs))) if refs else size
        info.update(actors=size, cpus_per_actor=cpus_per_actor, cluster_cpus=cluster_cpus, parts_by_node={})
        schema: Any = None
        if refs:
            context = ray.data.DataContext.get_current()
            with _QuietRay(context):
                dataset = ray.data.from_arrow_refs(refs).map_batches(
                    _PartEncoder,
                    fn_constructor_kwargs={"model_dir": str(model_dir), "kind": options.kind,
                                           "batch_size": options.batch_size, "normalize": options.normalize,
                                           "prompt_name": options.prompt_name,
                                           "num_cpus": cpus_per_actor,
                                           "runtime": runtime.to_dict() if runtime else None},
                    batch_size=None, batch_format="pyarrow", zero_copy_batch=True, num_cpus=cpus_per_actor,
                    compute=ray.data.ActorPoolStrategy(size=size))
                blocks = iter(dataset.iter_batches(batch_size=None, batch_format="pyarrow"))
                try:
                    schema, info["parts_by_node"] = _write_parts(blocks, pending, write)
                finally:
                    if isinstance(blocks, Generator):
                        blocks.close()  # Ray Data stops its actors now, also when ``write`` raised
        if pending:
            raise JobError(f"parts {sorted(pending)} came back incomplete from Ray")
        for part in empty:
            if schema is None:
                one_thread = (runtime or RuntimeOptions()).with_overrides(intra_op_num_threads=1,
                                                                          inter_op_num_threads=1)
                fields = output_fields(load_job_model(model_dir, options.kind, one_thread))
                schema = pa.schema([*part.table.schema, *fields])
            write(part, schema.empty_table())
        return info
    finally:
        if own_session:
            disconnect(ray, ray_threads)


__all__ = ["EmbedBatches", "assigned_cpus", "run_on_ray"]
