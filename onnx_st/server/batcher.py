"""Merges concurrent requests for one model into batches run in a worker thread.

Requests wait in a bounded asyncio queue. The worker takes the first one and, while more are
already queued (that is, under load), keeps taking them for at most ``max_wait_ms`` or until the
batch holds ``max_batch_tokens`` tokens; a lone request runs at once. Requests with the same key
(operation and options) are merged into one model call; the model runs in one worker thread so
the event loop stays free and the model is never called from two threads at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .metrics import Metrics

RunFn = Callable[[Hashable, list[Any]], Sequence[Any]]


@dataclass
class Job:
    """One request: its items (texts or pairs), their token counts and the future of its results."""

    key: Hashable
    items: list[Any]
    tokens: int
    future: asyncio.Future[list[Any]]
    queued_at: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Batches :class:`Job` s of one model.

    Args:
        run: ``run(key, items) -> results`` (one per item), called in the worker thread.
        max_batch_tokens: token budget of one merged batch (a larger request runs alone).
        max_wait_ms: how long to keep collecting once requests are queued.
        max_queue: queued requests beyond which new ones get 429.
        metrics, labels: where queue and batch figures go.
    """

    def __init__(self, run: RunFn, *, max_batch_tokens: int = 16384, max_wait_ms: float = 2.0,
                 max_queue: int = 512, metrics: Metrics | None = None,
                 labels: dict[str, str] | None = None) -> None:
        self._run = run
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=max_queue)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx-st-model")
        self._metrics = metrics or Metrics()
        self._labels = labels or {}
        self._task: asyncio.Task[None] | None = None
        self._held: Job | None = None

    def start(self) -> None:
        """Start the worker on the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self) -> None:
        """Cancel the worker and release the thread."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, key: Hashable, items: list[Any], tokens: int) -> list[Any]:
        """Queue one request and wait for its results (429 ``overloaded`` when the queue is full)."""
        self.start()
        job = Job(key, items, tokens, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise ApiError(429, "Model is overloaded", "overloaded") from None
        self._metrics.set("te_queue_size", self._queue.qsize(), self._labels)
        return await job.future

    async def _collect(self) -> list[Job]:
        first = self._held or await self._queue.get()
        self._held = None
        jobs, tokens = [first], first.tokens
        deadline = time.perf_counter() + self.max_wait
        while tokens < self.max_batch_tokens:
            if self._queue.empty():
                remaining = deadline - time.perf_counter()
                if len(jobs) == 1 or remaining <= 0:
                    break  # nothing queued behind a lone request: run now
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            if tokens + job.tokens > self.max_batch_tokens:
                self._held = job
                break
            jobs.append(job)
            tokens += job.tokens
        self._metrics.set("te_queue_size", self._queue.qsize(), self._labels)
        return jobs

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [j for j in await self._collect() if not j.future.done()]
            if not jobs:
                continue
            start = time.perf_counter()
            for job in jobs:
                self._metrics.observe("te_request_queue_duration", start - job.queued_at, self._labels)
            self._metrics.observe("te_batch_next_size", sum(len(j.items) for j in jobs), self._labels)
            self._metrics.observe("te_batch_next_tokens", sum(j.tokens for j in jobs), self._labels)
            outcomes = await loop.run_in_executor(self._executor, self._run_groups, jobs)
            elapsed = time.perf_counter() - start
            for job, outcome in zip(jobs, outcomes):
                self._metrics.observe("te_request_inference_duration", elapsed, self._labels)
                if job.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)

    def _run_groups(self, jobs: list[Job]) -> list[Any]:
        """Run each key's merged items in one call; if that fails, each request alone."""
        groups: dict[Hashable, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(job.key, []).append(i)
        outcomes: list[Any] = [None] * len(jobs)
        for key, members in groups.items():
            items = [item for i in members for item in jobs[i].items]
            try:
                results = list(self._run(key, items))
            except Exception as exc:
                for i in members:
                    if len(members) == 1:
                        outcomes[i] = exc
                        break
                    outcomes[i] = self._run_one(jobs[i])
                continue
            offset = 0
            for i in members:
                n = len(jobs[i].items)
                outcomes[i] = results[offset:offset + n]
                offset += n
        return outcomes

    def _run_one(self, job: Job) -> Any:
        try:
            return list(self._run(job.key, job.items))
        except Exception as exc:
            return exc
