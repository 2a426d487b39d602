"""The micro-batcher: token admission, internal batches, lanes served in turn, cancelled jobs dropped."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from onnx_st.server.batcher import MicroBatcher, split
from onnx_st.server.errors import ApiError
from onnx_st.server.inference import Operation


@dataclass(frozen=True)
class Echo(Operation):
    """Records each call's items; waits for ``gate`` so tests can queue work behind a running batch."""

    direction: str = "right"  # type: ignore[assignment]

    def call(self, model: Any, items: list[Any]) -> Sequence[Any]:
        model.calls.append(list(items))
        model.entered.set()
        assert model.gate.wait(10)
        return items


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[Any]] = []
        self.entered, self.gate = threading.Event(), threading.Event()


def test_split_under_budget() -> None:
    assert split([3, 3, 3, 10, 1], 6) == [slice(0, 2), slice(2, 3), slice(3, 4), slice(4, 5)]
    assert split([7], 6) == [slice(0, 1)]


def test_lanes_in_turn_admission_and_cancel() -> None:
    async def scenario() -> None:
        model = Recorder()
        batcher = MicroBatcher(model, max_batch_tokens=100, slice_tokens=40, small_tokens=10, max_queue_tokens=200,
                               max_wait_ms=0)  # type: ignore[arg-type]
        op = Echo()
        running = asyncio.ensure_future(batcher.submit(op, ["running"], [20]))
        await asyncio.to_thread(model.entered.wait, 5)
        large = asyncio.ensure_future(batcher.submit(op, [f"L{i}" for i in range(8)], [20] * 8))  # 4 slices
        await asyncio.sleep(0.01)
        with pytest.raises(ApiError) as refused:  # 20 + 160 admitted: 30 more is over 200
            await batcher.submit(op, ["x", "y"], [15, 15])
        assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) >= 1
        small = asyncio.ensure_future(batcher.submit(op, ["s1"], [5]))
        gone = asyncio.ensure_future(batcher.submit(op, ["gone"], [5]))
        await asyncio.sleep(0.01)
        gone.cancel()  # its client disconnected
        model.gate.set()
        assert await small == ["s1"] and await large == [f"L{i}" for i in range(8)]
        await asyncio.gather(running, gone, return_exceptions=True)
        # the large lane ran last ("running"): the small request goes next, before the 4 queued slices
        assert model.calls[:2] == [["running"], ["s1"]]
        assert model.calls[2:] == [["L0", "L1"], ["L2", "L3"], ["L4", "L5"], ["L6", "L7"]]
        assert ["gone"] not in model.calls and all(len(c) <= 2 for c in model.calls[1:])
        assert batcher.pending_tokens == 0
        await batcher.stop()

    asyncio.run(scenario())
