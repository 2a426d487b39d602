"""64 parallel clients: every answer equals the offline result, and requests were merged into batches."""

from __future__ import annotations

import asyncio
import re

import httpx
import numpy as np

from .conftest import fixture_inputs
from .server_helpers import fixture_models, live_server

CLIENTS = 64


def _texts(i: int) -> list[str]:
    base = fixture_inputs("dense-mean")[:10]
    return [f"{base[(i + k) % len(base)][:80]} client {i} item {k}" for k in range(1 + i % 4)]


async def _run_clients(url: str) -> list[tuple[int, list[list[float]] | list[float], list[dict[str, object]]]]:
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=60, trust_env=False, limits=limits) as c:
        async def one(i: int) -> tuple[int, list[list[float]] | list[float], list[dict[str, object]]]:
            texts = _texts(i)
            headers = {"x-use-cache": "false"}
            dense = c.post("/embed", json={"inputs": texts, "normalize": False}, headers=headers)
            rank = c.post("/rerank", json={"query": texts[0], "texts": texts, "truncate": True}, headers=headers)
            r_dense, r_rank = await asyncio.gather(dense, rank)
            assert r_dense.status_code == 200 and r_rank.status_code == 200, (r_dense.text, r_rank.text)
            return i, r_dense.json(), r_rank.json()

        return await asyncio.gather(*(one(i) for i in range(CLIENTS)))


def test_64_parallel_clients_get_every_answer_right() -> None:
    ref = fixture_models()
    with live_server() as url:
        results = asyncio.run(_run_clients(url))
        metrics = httpx.get(f"{url}/metrics", trust_env=False).text
    assert len(results) == CLIENTS
    for i, dense, ranks in results:
        texts = _texts(i)
        np.testing.assert_allclose(dense, ref["dense"].encode(texts), atol=1e-5)
        expected = ref["cross"].rank(texts[0], texts)
        np.testing.assert_allclose([r["score"] for r in ranks], [e["score"] for e in expected], atol=1e-6)
        assert sorted(r["index"] for r in ranks) == list(range(len(texts)))
    calls = int(re.search(r'te_batch_next_size_count\{model="dense"\} (\d+)', metrics).group(1))  # type: ignore
    assert calls < CLIENTS  # concurrent requests were merged
