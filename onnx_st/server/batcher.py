"""Merges concurrent requests for one model into batches run in a worker thread, admitted by work.

A request is split into jobs of at most ``slice_tokens`` tokens (so a 2,048-input request runs
in internal batches). Admission is by tokens: when the jobs admitted and not yet answered hold
``max_queue_tokens``, a new request is refused at once (429 with ``Retry-After``). Jobs wait in two
lanes, small (one request under ``small_tokens``) and large; the worker alternates between them when
both hold work, and a batch of the large lane holds at most ``slice_tokens``, so a one-text request
waits for at most about one slice however long the large backlog is. While more jobs are queued the
worker keeps collecting for at most ``max_wait_ms`` or until the batch holds its budget; jobs with equal operations are merged
into one model call, run in one worker thread. A job whose request was cancelled (its client
disconnected) is dropped before it is computed and its tokens are released at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from onnx_st.base.model import BaseModel
from onnx_st.server.errors import ApiError
from onnx_st.server.inference import Operation
from onnx_st.server.metrics import Metrics


@dataclass
class Job:
    """Part of one request: its items (texts or pairs), their tokens and the future of its results."""

    op: Operation
    items: list[Any]
    tokens: int
    future: asyncio.Future[list[Any]]
    queued_at: float = field(default_factory=time.perf_counter)


def split(counts: Sequence[int], budget: int) -> list[slice]:
    """Consecutive slices of ``counts`` holding at most ``budget`` tokens each (at least one item each)."""
    parts, start, total = [], 0, 0
    for i, n in enumerate(counts):
        if i > start and total + n > budget:
            parts.append(slice(start, i))
            start, total = i, 0
        total += n
    parts.append(slice(start, len(counts)))
    return parts


class MicroBatcher:
    """Batches the :class:`Job` s of one model.

    Args:
        model: the model every :class:`~onnx_st.server.inference.Operation` runs on.
        max_batch_tokens: token budget of one merged batch of small requests (a larger single item runs alone).
        slice_tokens: token budget of a job and of one batch of the large lane.
        max_wait_ms: how long to keep collecting once requests are queued.
        max_queue_tokens: tokens admitted and unanswered beyond which new requests get 429.
        small_tokens: requests up to this many tokens go in the small lane.
        metrics, labels: where queue and batch figures go.
    """

    def __init__(self, model: BaseModel, *, max_batch_tokens: int = 16384, max_wait_ms: float = 2.0,
                 max_queue_tokens: int = 262144, small_tokens: int = 1024, slice_tokens: int = 1024,
                 metrics: Metrics | None = None, labels: dict[str, str] | None = None) -> None:
        self.model = model
        self.max_batch_tokens = max_batch_tokens
        self.slice_tokens = min(slice_tokens, max_batch_tokens)
        self.max_queue_tokens = max_queue_tokens
        self.small_tokens = small_tokens
        self.max_wait = max_wait_ms / 1000
        self.pending_tokens = 0
        self._lanes: tuple[deque[Job], deque[Job]] = (deque(), deque())
        self._turn = 0
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx-st-model")
        self._metrics = metrics or Metrics()
        self._labels = labels or {}
        self._task: asyncio.Task[None] | None = None
        self._rate = 2000.0  # tokens per second, measured as batches run (for Retry-After)

    def start(self) -> None:
        """Start the worker on the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self) -> None:
        """Cancel the worker and release the thread."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def full(self) -> bool:
        """Whether the admitted work already fills the budget (checked before any tokenizing)."""
        return self.pending_tokens >= self.max_queue_tokens

    def overloaded(self) -> ApiError:
        """The 429 of a full queue, with ``Retry-After`` from the measured throughput."""
        wait = max(1, round(self.pending_tokens / max(self._rate, 1.0)))
        return ApiError(429, "Model is overloaded", "overloaded", headers={"Retry-After": str(wait)})

    async def submit(self, op: Operation, items: list[Any], counts: Sequence[int]) -> list[Any]:
        """Queue one request (its items with their token counts) and wait for its results.

        Raises:
            ApiError: 429 ``overloaded`` when the admitted work would exceed ``max_queue_tokens``.
        """
        self.start()
        total = sum(counts)
        if self.pending_tokens and self.pending_tokens + total > self.max_queue_tokens:
            raise self.overloaded()
        loop = asyncio.get_running_loop()
        lane = self._lanes[0 if total <= self.small_tokens else 1]
        jobs = []
        for part in split(counts, self.slice_tokens):
            job = Job(op, items[part], sum(counts[part]), loop.create_future())
            job.future.add_done_callback(self._releaser(job.tokens))
            self.pending_tokens += job.tokens
            lane.append(job)
            jobs.append(job)
        self._wakeup.set()
        self._metrics.set("te_queue_size", len(self._lanes[0]) + len(self._lanes[1]), self._labels)
        try:
            results = await asyncio.gather(*(j.future for j in jobs))
        finally:
            for job in jobs:  # cancelled (client gone) or failed: the rest are dropped unrun
                job.future.cancel()
        return [r for part in results for r in part]

    def _releaser(self, tokens: int) -> Callable[[asyncio.Future[list[Any]]], None]:
        def release(_: asyncio.Future[list[Any]]) -> None:
            self.pending_tokens -= tokens

        return release

    def _next_lane(self) -> deque[Job] | None:
        for lane in self._lanes:
            while lane and lane[0].future.done():
                lane.popleft()  # cancelled before it ran
        live = [i for i, lane in enumerate(self._lanes) if lane]
        if not live:
            return None
        # both hold work: the lane not served last; else the one that does
        self._turn = (1 - self._turn) if len(live) == 2 else live[0]
        return self._lanes[self._turn]

    async def _collect(self) -> list[Job]:
        while (lane := self._next_lane()) is None:
            self._wakeup.clear()
            await self._wakeup.wait()
        first = lane.popleft()
        jobs, tokens = [first], first.tokens
        budget = self.max_batch_tokens if lane is self._lanes[0] else self.slice_tokens
        deadline = time.perf_counter() + self.max_wait
        while tokens < budget:
            if not lane:
                remaining = deadline - time.perf_counter()
                if len(jobs) == 1 or remaining <= 0:
                    break  # nothing queued behind a lone request: run now
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
                continue
            job = lane[0]
            if job.future.done():
                lane.popleft()
                continue
            if tokens + job.tokens > budget:
                break
            jobs.append(lane.popleft())
            tokens += job.tokens
        self._metrics.set("te_queue_size", len(self._lanes[0]) + len(self._lanes[1]), self._labels)
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
            tokens = sum(j.tokens for j in jobs)
            self._metrics.observe("te_batch_next_size", sum(len(j.items) for j in jobs), self._labels)
            self._metrics.observe("te_batch_next_tokens", tokens, self._labels)
            outcomes = await loop.run_in_executor(self._executor, self._run_groups, jobs)
            elapsed = time.perf_counter() - start
            self._rate = 0.8 * self._rate + 0.2 * tokens / max(elapsed, 1e-6)
            for job, outcome in zip(jobs, outcomes):
                self._metrics.observe("te_request_inference_duration", elapsed, self._labels)
                if job.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)

    def _run_groups(self, jobs: list[Job]) -> list[Any]:
        """Run each operation's merged items in one call; if that fails, each job alone."""
        groups: dict[Operation, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(job.op, []).append(i)
        outcomes: list[Any] = [None] * len(jobs)
        for op, members in groups.items():
            items = [item for i in members for item in jobs[i].items]
            try:
                results = list(op.run(self.model, items))
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
            return list(job.op.run(self.model, job.items))
        except Exception as exc:
            return exc
