"""The embedding job: input parts in, Parquet parts out, resumable, on one process or on Ray.

The input is split by row number into parts of ``part_rows`` rows. Each part is screened for bad rows,
encoded as one unit (length-sorted batches of ``batch_size`` inside it) and written atomically as
``OUTPUT/part-NNNNN.parquet``. A rerun with the same input, model and options skips the parts that
exist; both engines encode a part the same way, so their outputs are identical and one can resume
what the other started.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from onnx_st.errors import InputError, ModelNotFoundError, foreign_errors
from onnx_st.jobs import manifest
from onnx_st.jobs.badrows import PreparedPart, fail_on, screen
from onnx_st.jobs.encode import OUTPUT_COLUMNS, encode_table, load_job_model, output_fields
from onnx_st.jobs.errors import BadRowsError, JobError
from onnx_st.jobs.progress import Progress
from onnx_st.jobs.readers import open_reader
from onnx_st.jobs.spec import BadRowPolicy, JobOptions, detect_kind
from onnx_st.jobs.writer import OutputDir
from onnx_st.kinds import KindName
from onnx_st.options import RuntimeOptions

Engine = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")
WriteFn = Callable[[PreparedPart, Any], None]


@dataclass
class JobResult:
    """What a run did.

    Attributes:
        output: the output directory.
        kind: the model kind used.
        engine: ``local`` or ``ray``.
        parts: parts of the whole job; ``parts_written``: written by this run; ``parts_skipped``:
            found finished from an earlier run.
        rows: input rows; ``rows_encoded``: rows encoded by this run.
        rejected: bad rows of the whole job (all listed in ``OUTPUT/_rejected.jsonl``);
            ``rejected_sample``: the first of them.
        seconds: wall time of this run; ``encode_seconds``: from the first part handed to the engine
            to the last part written (Ray: includes starting the actors).
        engine_info: engine details (Ray: actors, CPUs per actor, seconds to connect).
    """

    output: Path
    kind: KindName
    engine: str
    parts: int
    parts_written: int = 0
    parts_skipped: int = 0
    rows: int = 0
    rows_encoded: int = 0
    rejected: int = 0
    rejected_sample: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    encode_seconds: float = 0.0
    engine_info: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        """Rows encoded by this run per second of ``encode_seconds``."""
        return self.rows_encoded / self.encode_seconds if self.encode_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (what ``onnx-st embed`` prints)."""
        return {"output": str(self.output), "kind": self.kind, "engine": self.engine, "parts": self.parts,
                "parts_written": self.parts_written, "parts_skipped": self.parts_skipped, "rows": self.rows,
                "rows_encoded": self.rows_encoded, "rejected": self.rejected, "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second, 2), **({"engine_info": self.engine_info}
                                                                       if self.engine_info else {})}


class PartFeed:
    """The parts still to do, screened, in input order; stops before a bad part under ``--on-bad-row fail``.

    After iteration, ``error`` holds that part's :class:`BadRowsError` (raised once the parts before it
    are written); ``started_at`` is when the first part was handed out.
    """

    def __init__(self, parts: Iterator[Any], options: JobOptions, done: set[int], on_bad_row: BadRowPolicy) -> None:
        self._parts = parts
        self._options = options
        self._done = done
        self._on_bad_row = on_bad_row
        self.error: BadRowsError | None = None
        self.started_at: float | None = None

    def __iter__(self) -> Iterator[PreparedPart]:
        for raw in self._parts:
            if raw.index in self._done:
                continue
            part = screen(raw, self._options)
            if part.rejected and self._on_bad_row == "fail":
                self.error = fail_on(part)
                return
            if self.started_at is None:
                self.started_at = time.perf_counter()
            yield part


def run_local(feed: Iterable[PreparedPart], write: WriteFn, *, model_dir: Path, options: JobOptions,
              runtime: RuntimeOptions | None = None) -> dict[str, Any]:
    """Encode the parts one after the other in this process (the model is loaded at the first part).

    With ``intra_op_num_threads`` set, each run takes that many threads and one inter-op thread.
    """
    runtime = runtime or RuntimeOptions()
    threads = runtime.intra_op_num_threads
    if threads:
        runtime = runtime.with_overrides(inter_op_num_threads=1)
    model, fields = None, None
    for part in feed:
        if model is None:
            model = load_job_model(model_dir, options.kind, runtime)
            fields = output_fields(model)
        write(part, encode_table(model, options, part.table, fields))
    return {"threads": threads} if threads else {}


def run_embed_job(input_path: str | Path, output_dir: str | Path, model_dir: str | Path, *,
                  kind: str = "auto", input_format: str | None = None, text_column: str = "text",
                  id_column: str | None = None, query_column: str = "query", document_column: str = "document",
                  batch_size: int = 32, part_rows: int = 10_000, normalize: bool = False,
                  prompt_name: str | None = None, on_bad_row: str = "skip",
                  engine: str = "local", runtime: RuntimeOptions | None = None, address: str | None = None,
                  actors: int | None = None, cpus_per_actor: float = 1.0, progress: bool = True,
                  on_part_written: Callable[[int], None] | None = None) -> JobResult:
    """Embed every row of ``input_path`` into Parquet parts under ``output_dir``; resume what is there.

    Args:
        input_path: a JSON Lines, CSV or Parquet file (or a directory of Parquet files).
        output_dir: a new or empty directory, or one this job started before (resumed).
        model_dir: a model directory; on Ray it must be readable at the same path on every node.
        kind: ``auto`` (from the model directory), ``dense``, ``sparse`` or ``cross``.
        input_format: ``jsonl``, ``csv``, ``parquet`` or ``None`` (from the suffix).
        text_column, id_column, query_column, document_column, batch_size, part_rows, normalize,
            prompt_name: see :class:`~onnx_st.jobs.spec.JobOptions`.
        on_bad_row: ``skip`` (report and leave out) or ``fail`` (stop before writing that part).
        engine: ``local`` (this process) or ``ray`` (Ray Data actors).
        runtime: how the model runs (:class:`~onnx_st.RuntimeOptions`: ONNX file, provider, budgets...) on
            either engine; its ``intra_op_num_threads`` apply to the local engine only (Ray actors use their
            CPUs); the ONNX file is recorded in the manifest.
        address: Ray cluster address (``auto``, ``ray://...``); default: the running Ray session,
            else a new local cluster.
        actors, cpus_per_actor: Ray actors (default: the cluster's CPUs / ``cpus_per_actor``) and the
            CPUs each reserves (and uses as ONNX Runtime threads).
        progress: a progress bar on stderr (tqdm).
        on_part_written: called with each part number once its file is in place.

    Raises:
        ModelNotFoundError, InputError, BadRowsError, JobError (ResumeMismatchError), MissingExtraError.
    """
    started = time.perf_counter()
    model_path = Path(model_dir).expanduser()
    if not model_path.is_dir():
        raise ModelNotFoundError(f"Model directory not found: {model_dir}")
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {ENGINES}, got {engine!r}")
    if on_bad_row not in ("skip", "fail"):
        raise InputError(f"on_bad_row must be 'skip' or 'fail', got {on_bad_row!r}")
    if engine == "local" and (address is not None or actors is not None):
        raise InputError("address and actors apply to the ray engine (--engine ray)")
    runtime = runtime or RuntimeOptions()
    if engine == "ray" and runtime.intra_op_num_threads:
        raise InputError("threads applies to the local engine; Ray actors use --cpus-per-actor threads")
    resolved: KindName = detect_kind(model_path) if kind == "auto" else kind  # type: ignore[assignment]
    options = JobOptions(kind=resolved, text_column=text_column, query_column=query_column,
                         document_column=document_column, id_column=id_column, batch_size=batch_size,
                         part_rows=part_rows, normalize=normalize, prompt_name=prompt_name)
    reader = open_reader(input_path, options.text_columns, options.id_column, input_format)
    scan = reader.scan()
    parts = math.ceil(scan.rows / options.part_rows)

    out = OutputDir(output_dir)
    out.prepare()
    with foreign_errors(JobError, "cannot fingerprint the input and the model"):
        new = manifest.build(input_path=reader.path.resolve(), input_format=reader.format, input_files=reader.files,
                             rows=scan.rows, model_dir=model_path.resolve(), options=options.to_dict(runtime.file_name), parts=parts)
    saved = manifest.load(out.path)
    if saved is not None:
        manifest.check_resume(saved, new, out.path)
    out.write_manifest(new)

    done = out.finished() & set(range(parts))
    rows_done = sum(min(options.part_rows, scan.rows - i * options.part_rows) for i in done)
    result = JobResult(out.path, resolved, engine, parts, parts_skipped=len(done), rows=scan.rows)
    bar = Progress(scan.rows, rows_done, enabled=progress)
    columns = ["id", *OUTPUT_COLUMNS[resolved]]

    def write(part: PreparedPart, table: Any) -> None:
        if "_row" in table.column_names:
            table = table.sort_by("_row")
        out.write_part(part.index, part.start, part.num_rows, table.select(columns).replace_schema_metadata(None),
                       part.rejected)
        result.parts_written += 1
        result.rows_encoded += table.num_rows
        bar.update(part.num_rows)
        if on_part_written is not None:
            on_part_written(part.index)

    feed = PartFeed(reader.parts(options.part_rows), options, done, on_bad_row)  # type: ignore[arg-type]
    try:
        if engine == "local":
            result.engine_info = run_local(feed, write, model_dir=model_path, options=options, runtime=runtime)
        else:
            from onnx_st.jobs.ray_engine import run_on_ray

            result.engine_info = run_on_ray(feed, write, model_dir=model_path, options=options, address=address,
                                            actors=actors, cpus_per_actor=cpus_per_actor, runtime=runtime)
    finally:
        bar.close()
    if feed.started_at is not None:
        result.encode_seconds = time.perf_counter() - feed.started_at
    if feed.error is not None:
        result.seconds = time.perf_counter() - started
        raise feed.error

    result.rejected, result.rejected_sample = out.write_rejected(parts)
    new.update(status="complete", summary={"rows": scan.rows, "rows_written": scan.rows - result.rejected,
                                           "rejected": result.rejected, "parts": parts})
    out.write_manifest(new)
    result.seconds = time.perf_counter() - started
    return result

