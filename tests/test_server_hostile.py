"""Hostile requests: huge payloads in a memory-capped server, clients that give up, /health under load."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

from onnx_st import SentenceTransformer

from .conftest import ROOT, fixture_dir
from .server_helpers import client, live_server, wait_healthy

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit " * 2500).strip()  # 20,000 words
BIG = "word " * 390_000  # just under the 2 MB payload limit
CAP_MIB = 700  # address space of the child server: its peak for these payloads is about 400 MiB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP_MIB << 20, CAP_MIB << 20))


def test_largest_payloads_in_a_memory_capped_server() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "onnx_st", "serve", f"cross={fixture_dir('cross-1label')}",
           f"dense={fixture_dir('dense-mean')}", f"sparse={fixture_dir('sparse-max-relu')}",
           f"mv={fixture_dir('multi-vector-basic')}", "--port", str(port), "--log-level", "warning", "--threads", "1"]
    proc = subprocess.Popen(cmd, env=env, preexec_fn=_cap,  # noqa: PLW1509 - sets only an rlimit
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url)
        requests: list[tuple[str, dict[str, Any], int]] = [
            ("/rerank", {"query": WORDS, "texts": [WORDS], "truncate": True, "model": "cross"}, 200),
            ("/models/cross", {"inputs": {"query": WORDS, "texts": [WORDS]}}, 200),
            ("/models/cross", {"inputs": {"source_sentence": WORDS, "sentences": [WORDS]}}, 200),
            ("/models/cross", {"inputs": [[WORDS, WORDS]]}, 200),
            ("/predict", {"inputs": [WORDS, WORDS], "truncate": True, "model": "cross"}, 200),
            ("/v1/rerank", {"query": WORDS, "documents": [WORDS], "model": "cross"}, 200),
            ("/", {"query": WORDS, "texts": [WORDS], "truncate": True, "model": "cross"}, 200),
            ("/embed", {"inputs": BIG, "truncate": True, "model": "dense"}, 200),
            ("/embed", {"inputs": BIG, "model": "dense"}, 422),
            ("/models/dense", {"inputs": BIG}, 200),
            ("/v1/embeddings", {"input": BIG, "model": "dense"}, 200),
            ("/embed", {"inputs": [BIG[:60000]] * 32, "truncate": True, "model": "dense"}, 200),
            ("/tokenize", {"inputs": BIG, "model": "dense"}, 422),
            ("/v2/rerank", {"query": WORDS, "documents": [WORDS], "model": "cross"}, 200),
            ("/invocations", {"inputs": BIG, "truncate": True, "model": "dense"}, 200),
            ("/models/dense/embed", {"inputs": BIG, "truncate": True}, 200),
            ("/similarity", {"inputs": {"source_sentence": BIG[:1_000_000], "sentences": [BIG[:900_000]]},
                             "parameters": {"truncate": True}, "model": "dense"}, 200),
            ("/v1/embeddings", {"input": [BIG[:900]] * 2048, "model": "dense"}, 200),
            ("/embed_sparse", {"inputs": BIG, "truncate": True, "model": "sparse"}, 200),
            ("/embed_all", {"inputs": BIG, "truncate": True, "model": "dense"}, 200),
            ("/embed_all", {"inputs": BIG, "truncate": True, "model": "mv"}, 200),
            ("/models/mv", {"inputs": BIG, "parameters": {"truncate": True}}, 200),
            ("/decode", {"ids": [7] * 300_000, "model": "dense"}, 200),
        ]
        with httpx.Client(base_url=url, trust_env=False, timeout=120) as c:
            for path, body, status in requests:
                r = c.post(path, json=body)
                assert r.status_code == status, (path, r.text[:200])
            assert c.get("/health").status_code == 200
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _blocked_model() -> tuple[SentenceTransformer, threading.Event, threading.Event, list[list[str]]]:
    model = SentenceTransformer(str(fixture_dir("dense-mean")))
    entered, release, seen = threading.Event(), threading.Event(), []
    encode = model.encode

    def blocking_encode(sentences: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(list(sentences))
        entered.set()
        assert release.wait(30)
        return encode(sentences, *args, **kwargs)

    model.encode = blocking_encode  # type: ignore[method-assign]
    return model, entered, release, seen


def test_a_client_that_gave_up_is_not_computed() -> None:
    model, entered, release, seen = _blocked_model()
    with live_server({"dense": model}) as url, client(url) as c:
        first = threading.Thread(target=lambda: c.post("/embed", json={"inputs": "first"}))
        first.start()
        assert entered.wait(10)
        try:  # queued behind the running batch, then the client gives up
            httpx.post(f"{url}/embed", json={"inputs": "abandoned"}, timeout=0.5, trust_env=False)
        except httpx.TimeoutException:
            pass
        time.sleep(0.3)
        release.set()
        first.join(30)
        assert c.post("/embed", json={"inputs": "after"}).status_code == 200
        assert ["abandoned"] not in seen and ["after"] in seen


def test_health_answers_while_large_payloads_are_tokenized() -> None:
    model = SentenceTransformer(str(fixture_dir("dense-mean")))
    with live_server({"dense": model}, max_payload_bytes=4_000_000) as url:
        stop = threading.Event()

        def flood() -> None:
            with client(url) as c:
                while not stop.is_set():
                    c.post("/embed", json={"inputs": [BIG[:60_000]] * 16, "truncate": True})
                    c.post("/embed", json={"inputs": BIG[:1_000_000], "truncate": False})  # counted in full: 422

        threads = [threading.Thread(target=flood) for _ in range(3)]
        for t in threads:
            t.start()
        latencies = []
        with client(url) as c:
            time.sleep(0.5)
            for _ in range(20):
                start = time.perf_counter()
                assert c.get("/health").status_code == 200
                latencies.append(time.perf_counter() - start)
                time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(60)
        latencies.sort()
        print("/health latencies (s):", [round(x, 3) for x in latencies])
        assert latencies[len(latencies) // 2] < 0.1, latencies  # the median, on a shared 2-core machine
