"""Multi-process inference: worker processes, each with its own ONNX session, fed chunks over queues.

The pool has sentence-transformers' shape (``{"input", "output", "processes"}``), so code that starts,
passes and stops it runs unchanged. ONNX sessions cannot be pickled, so each worker loads the model
directory itself (with the parent's options, prompts, truncation length and pooling prompt setting) and the CPU threads are
split between the workers.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from onnx_st.base.pipeline import Pipeline
from onnx_st.cpu import cpu_count
from onnx_st.errors import InputError, OnnxSTError
from onnx_st.options import RuntimeOptions


class PoolModel(Protocol):
    """What the pool needs of a model (:class:`~onnx_st.base.model.BaseModel` has it)."""

    options: RuntimeOptions
    model_dir: Path
    pipeline: Pipeline
    _init_kwargs: dict[str, Any]

    @property
    def _inference(self) -> Callable[..., list[Any]]: ...

    def _worker_state(self) -> dict[str, Any]: ...

    def _apply_worker_state(self, state: dict[str, Any]) -> None: ...

MultiProcessPool = dict[str, Any]
"""``{"input": Queue, "output": Queue, "processes": [Process, ...]}``."""

_POLL_S = 1.0


def _worker(model_cls: Callable[..., PoolModel], model_dir: str, init_kwargs: dict[str, Any], device: str,
            state: dict[str, Any], inputs: Any, outputs: Any) -> None:
    """Load the model and answer ``(chunk_id, items, kwargs)`` chunks until the ``None`` sentinel."""
    try:
        model = model_cls(model_dir, local_files_only=True, device=None if device == "cpu" else device,
                          **init_kwargs)
        model._apply_worker_state(state)
    except Exception as exc:  # reported on the first chunk, the parent raises it
        failure: Exception | None = exc
    else:
        failure = None
    while True:
        job = inputs.get()
        if job is None:
            return
        chunk_id, items, kwargs = job
        if failure is not None:
            outputs.put((chunk_id, _picklable(failure)))
            continue
        try:
            outputs.put((chunk_id, model._inference(items, show_progress_bar=False, **kwargs)))
        except Exception as exc:
            outputs.put((chunk_id, _picklable(exc)))


def _picklable(exc: Exception) -> Exception:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return OnnxSTError("".join(traceback.format_exception(exc)))


def start_pool(model: PoolModel, target_devices: list[str] | None = None) -> MultiProcessPool:
    """Start one worker per entry of ``target_devices`` (default: 4 CPU workers, as sentence-transformers).

    Each CPU worker gets ``cores // workers`` intra-op threads unless the model's options set a number.

    Raises:
        InputError: an empty or non-string ``target_devices``.
    """
    devices = ["cpu"] * 4 if target_devices is None else list(target_devices)
    if not devices or not all(isinstance(d, str) for d in devices):
        raise InputError(f"target_devices must be a non-empty list of device strings, got {target_devices!r}")
    options = model.options
    if options.intra_op_num_threads is None:
        options = replace(options, intra_op_num_threads=max(1, cpu_count() // len(devices) // options.parallel_runs))
    init_kwargs = {**model._init_kwargs, "options": options}
    import multiprocessing  # on first use: importing it at start-up aliases __main__ as __mp_main__

    ctx = multiprocessing.get_context("spawn")
    inputs, outputs = ctx.Queue(), ctx.Queue()
    processes = []
    for device in devices:
        process = ctx.Process(target=_worker, args=(type(model), str(model.model_dir), init_kwargs, device,
                                                   model._worker_state(), inputs, outputs), daemon=True)
        process.start()
        processes.append(process)
    return {"input": inputs, "output": outputs, "processes": processes}


def stop_pool(pool: MultiProcessPool) -> None:
    """Stop the workers and close the queues."""
    for _ in pool["processes"]:
        pool["input"].put(None)
    for process in pool["processes"]:
        process.join(timeout=5)
        if process.is_alive():
            process.terminate()
            process.join()
        process.close()
    pool["input"].cancel_join_thread()
    pool["input"].close()
    pool["output"].close()


def _result(pool: MultiProcessPool) -> tuple[int, Any]:
    import queue

    while True:
        try:
            return pool["output"].get(timeout=_POLL_S)  # type: ignore[no-any-return]
        except queue.Empty:
            pass
        dead = [p for p in pool["processes"] if not p.is_alive()]
        if dead:
            details = ", ".join(f"pid {p.pid} (exit code {p.exitcode})" for p in dead)
            raise OnnxSTError(f"{len(dead)} pool worker(s) died: {details}. Stop the pool and start a new one.")


def _chunk_size(items: int, workers: int, batch_size: Any) -> int:
    """About ten chunks per worker, each a whole number of batches (about 5,000 items at most)."""
    batch = batch_size if isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > 0 else 1
    per_chunk = min(math.ceil(items / workers / 10), 5000)
    return max(batch, math.ceil(per_chunk / batch) * batch)


def run_in_pool(model: PoolModel, items: list[Any], kwargs: dict[str, Any], *, pool: MultiProcessPool | None,
                devices: Any = None, chunk_size: int | None = None, show_progress_bar: bool | None = None
                ) -> list[Any]:
    """``model._inference(items, **kwargs)`` spread over the pool's workers, results in input order.

    Raises:
        InputError: ``chunk_size`` below 1 or a malformed pool.
    """
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if not items:
        return []
    created = pool is None
    active = start_pool(model, list(devices)) if pool is None else pool
    if not isinstance(active, dict) or not {"input", "output", "processes"} <= set(active):
        raise InputError("pool must be the dict start_multi_process_pool() returns")
    try:
        batch_size = kwargs.get("batch_size", 32)
        size = chunk_size or _chunk_size(len(items), len(active["processes"]), batch_size)
        # Longest first by token count, as one process batches them: each chunk then holds whole batches
        # of similar length (sorting by characters instead left a third more padding in the workers'
        # batches), and the last chunks to finish are the short ones.
        lengths = model.pipeline.lengths(items, batch_size, kwargs.get("prompt"), kwargs.get("task"))
        order = sorted(range(len(items)), key=lambda i: -lengths[i])
        starts = range(0, len(items), size)
        for chunk_id, start in enumerate(starts):
            active["input"].put((chunk_id, [items[i] for i in order[start:start + size]], kwargs))
        chunks: list[Any] = [None] * len(starts)
        for _ in starts:
            chunk_id, output = _result(active)
            chunks[chunk_id] = output
        for output in chunks:
            if isinstance(output, Exception):
                raise output
        rows: list[Any] = [None] * len(items)
        for i, row in zip(order, (row for chunk in chunks for row in chunk)):
            rows[i] = row
        return rows
    finally:
        if created:
            stop_pool(active)
