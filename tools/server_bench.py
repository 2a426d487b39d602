"""Server benchmark: requests/s and p50/p99 latency under concurrent clients, beside offline ``encode``.

    python -m tools.server_bench --model DIR [--seconds 3] [--clients 1 8 64] [--sizes 1 32]

The last cell is a flood: ``--flooders`` clients send 32 long texts each and give up after
``--give-up-s`` while one client sends one-text requests, whose p50/p99 it prints.

Starts ``onnx-st serve DIR`` in a subprocess on a free loopback port and drives ``POST /embed``
(``x-use-cache: false``) from keep-alive connections on a minimal HTTP/1.1 client, so the load
generator takes little of the CPU the server needs. Offline figures are ``model.encode`` in this
process while the server is idle. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

_SUBJECTS = ["The quick brown fox", "A small team of engineers", "My neighbour's old dog", "The city council",
             "An unexpected storm", "The new library", "A curious student", "The morning train"]
_VERBS = ["jumped over", "discussed", "quietly watched", "changed the plans for", "was late because of",
          "wrote a long report about"]
_OBJECTS = ["the lazy dog near the river.", "the budget for next year's festival.", "a sunny afternoon in the park.",
            "the results of the latest experiment.", "the crowded market on Saturday morning."]


def sentences(n: int, offset: int = 0) -> list[str]:
    """``n`` varied English sentences (about 8-14 words)."""
    out = []
    for i in range(offset, offset + n):
        s, v, o = _SUBJECTS[i % 8], _VERBS[(i // 8) % 6], _OBJECTS[(i // 48) % 5]
        out.append(f"{s} {v} {o} ({i})")
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes,
                body: bytes) -> tuple[int, bytes]:
    writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _load(port: int, clients: int, size: int, seconds: float, max_seconds: float) -> dict[str, float]:
    """Closed-loop clients; each runs ``seconds`` and at least three requests (the first one is warm-up).

    Each client's rate is measured between its own first and last completion, so a cell whose round
    takes longer than ``seconds`` (64 clients x 32 sentences on a slow CPU) still gives an exact figure.
    """
    head = (f"POST /embed HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "x-use-cache: false\r\nContent-Length: ").encode()
    start = time.perf_counter()
    stop, cap = start + seconds, start + max_seconds
    latencies: list[float] = []
    rates: list[float] = []

    async def client(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done_at: list[float] = []
        i = 0
        while ((now := time.perf_counter()) < stop or len(done_at) < 3) and now < cap:
            body = json.dumps({"inputs": sentences(size, 1000 * k + i), "normalize": False}).encode()
            status, _ = await _post(reader, writer, head, body)
            if status != 200:
                raise RuntimeError(f"server answered {status}")
            done_at.append(time.perf_counter())
            if len(done_at) > 1:
                latencies.append(done_at[-1] - now)
            i += size
        writer.close()
        if len(done_at) > 1:
            rates.append((len(done_at) - 1) / (done_at[-1] - done_at[0]))

    await asyncio.gather(*(client(k) for k in range(clients)))
    lat = np.array(latencies or [float("nan")]) * 1000
    rps = float(sum(rates))
    return {"clients": clients, "size": size, "requests_s": rps, "sentences_s": rps * size,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "cell_s": time.perf_counter() - start}


async def _flood(port: int, flooders: int, seconds: float, give_up_s: float) -> dict[str, float]:
    """One-text requests from one client while ``flooders`` clients send 32 long texts and give up after ``give_up_s``.

    A flooder that gives up closes its connection (the server must drop its queued work) and sends again.
    """
    head = (f"POST /embed HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "x-use-cache: false\r\nContent-Length: ").encode()
    stop = time.perf_counter() + seconds
    counts = {"flood_sent": 0, "flood_done": 0, "flood_gave_up": 0, "flood_429": 0}
    latencies: list[float] = []
    long_text = " ".join(sentences(40))

    async def flooder(k: int) -> None:
        while time.perf_counter() < stop:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            body = json.dumps({"inputs": [f"{k} {i} {long_text}" for i in range(32)], "truncate": True}).encode()
            counts["flood_sent"] += 1
            try:
                status, _ = await asyncio.wait_for(_post(reader, writer, head, body), give_up_s)
                counts["flood_done" if status == 200 else "flood_429" if status == 429 else "flood_gave_up"] += 1
            except asyncio.TimeoutError:
                counts["flood_gave_up"] += 1
            writer.close()

    async def probe() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.5)  # let the flood build up
        i = 0
        while time.perf_counter() < stop:
            body = json.dumps({"inputs": sentences(1, 10_000 + i)}).encode()
            start = time.perf_counter()
            status, _ = await _post(reader, writer, head, body)
            if status == 200:
                latencies.append(time.perf_counter() - start)
            i += 1
            await asyncio.sleep(0.02)
        writer.close()

    await asyncio.gather(probe(), *(flooder(k) for k in range(flooders)))
    lat = np.array(latencies or [float("nan")]) * 1000
    return {"flooders": flooders, "probes": len(latencies), "probe_p50_ms": float(np.percentile(lat, 50)),
            "probe_p99_ms": float(np.percentile(lat, 99)), **counts}


def cpu_description() -> str:
    """The CPU model and its vector instruction sets (``/proc/cpuinfo`` where there is one)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        import platform

        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wanted = [f for f in flags if f.startswith(("avx", "sse4", "amx", "fma", "f16c")) or f in ("vnni", "avx_vnni")]
    return f"{model}; {' '.join(sorted(set(wanted)))}"


def offline(model_dir: Path, seconds: float) -> dict[str, float]:
    """Sentences/s of ``encode`` one sentence per call and 32 per call."""
    from onnx_st.dense.sentence_transformer import SentenceTransformer

    model = SentenceTransformer(str(model_dir))
    out = {}
    for size in (1, 32):
        model.encode(sentences(size))
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.encode(sentences(size, n), batch_size=32)
            n += size
        out[f"offline_{size}"] = n / (time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (``--json`` for machine-readable output)."""
    parser = argparse.ArgumentParser(prog="python -m tools.server_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a dense model directory")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    parser.add_argument("--max-seconds", type=float, default=90.0, help="hard limit per cell")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 32], help="sentences per request")
    parser.add_argument("--flooders", type=int, default=64, help="clients sending long batches in the flood cell")
    parser.add_argument("--give-up-s", type=float, default=2.0, help="a flooder's client-side timeout")
    parser.add_argument("--flood-seconds", type=float, default=10.0, help="length of the flood cell")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    ref = offline(args.model, args.seconds)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "onnx_st", "serve", f"bench={args.model}", "--port", str(port),
                             "--log-level", "warning"])
    rows: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200:
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)
        for size in args.sizes:
            for clients in args.clients:
                rows.append(asyncio.run(_load(port, clients, size, args.seconds, args.max_seconds)))
        flood = asyncio.run(_flood(port, args.flooders, args.flood_seconds, args.give_up_s))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    after = offline(args.model, args.seconds)  # again: a drift means other load on the machine
    if args.json:
        print(json.dumps({"model": str(args.model), "cpu": cpu_description(), **ref, "after": after, "rows": rows,
                          "flood": flood}, indent=2))
        return 0
    print(f"model {args.model}")
    print(f"cpu {cpu_description()}")
    print(f"offline encode: {ref['offline_1']:.0f} sentences/s one per call, {ref['offline_32']:.0f} sentences/s "
          f"32 per call (after the server cells: {after['offline_1']:.0f}, {after['offline_32']:.0f})")
    print(f"{'clients':>7} {'sent/req':>8} {'req/s':>8} {'sent/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs offline':>10}"
          f" {'cell s':>6}")
    for r in rows:
        share = r["sentences_s"] / ref["offline_32"]
        print(f"{r['clients']:>7} {r['size']:>8} {r['requests_s']:>8.1f} {r['sentences_s']:>8.0f} "
              f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {share:>9.0%} {r['cell_s']:>6.1f}")
    print(f"flood: {flood['flooders']} clients send 32 long texts and give up after {args.give_up_s:g} s "
          f"(sent {flood['flood_sent']}, answered {flood['flood_done']}, 429 {flood['flood_429']}, gave up "
          f"{flood['flood_gave_up']}); one-text requests meanwhile: p50 {flood['probe_p50_ms']:.1f} ms, "
          f"p99 {flood['probe_p99_ms']:.1f} ms over {flood['probes']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
