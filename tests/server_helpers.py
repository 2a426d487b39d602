"""A real uvicorn server on 127.0.0.1 in a background thread, for the server tests."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from onnx_st import CrossEncoder, SentenceTransformer, SparseEncoder
from onnx_st.server import create_app

from .conftest import fixture_dir

SEED_SOURCE = "That is a happy person"
SEED_SENTENCES = ["That is a happy dog", "That is a very happy person", "Today is a sunny day"]
SEED_PAYLOAD = ('{"inputs": { "source_sentence": "That is a happy person", "sentences": [ "That is a happy dog", '
                '"That is a very happy person", "Today is a sunny day" ] }}')


def fixture_models() -> dict[str, Any]:
    """Fresh instances of the four fixture models the server tests serve."""
    return {
        "dense": SentenceTransformer(str(fixture_dir("dense-mean"))),
        "sparse": SparseEncoder(str(fixture_dir("sparse-max-relu"))),
        "cross": CrossEncoder(str(fixture_dir("cross-1label"))),
        "cross3": CrossEncoder(str(fixture_dir("cross-3labels"))),
    }


@contextmanager
def live_server(models: Mapping[str, Any | str | Path] | None = None, **options: Any) -> Iterator[str]:
    """Serve ``create_app(models, **options)`` with uvicorn on a free loopback port; yields the base URL."""
    app = create_app(models if models is not None else fixture_models(), **options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_keep_alive=30))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def client(base_url: str, **kwargs: Any) -> httpx.Client:
    """An HTTP client for the server (no proxies from the environment)."""
    return httpx.Client(base_url=base_url, timeout=60, trust_env=False, **kwargs)


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float = 60.0) -> None:
    """Wait until a server started as ``proc`` answers ``/health`` with 200 (fails if it exits or times out)."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(f"{url}/health", trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not become healthy"
        time.sleep(0.1)
