"""A bounded LRU of response bodies, keyed by model, route and canonical payload."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any


def cache_key(model_id: str, route: str, payload: Any) -> str:
    """A digest of ``(model_id, route, payload)``; the payload's key order does not matter."""
    text = json.dumps([model_id, route, payload], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


class ResultCache:
    """Least-recently-used cache of response bodies.

    Args:
        max_entries: entries kept (0 disables the cache).
        max_bytes: total size of the kept bodies.
    """

    def __init__(self, max_entries: int = 1024, max_bytes: int = 64 * 2**20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        """The body stored under ``key`` (marked as recently used), or ``None``."""
        with self._lock:
            body = self._data.get(key)
            if body is not None:
                self._data.move_to_end(key)
            return body

    def put(self, key: str, body: bytes) -> None:
        """Store a body, evicting the least recently used ones beyond the bounds."""
        if self.max_entries <= 0 or len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._data[key] = body
            self._bytes += len(body)
            while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._data.popitem(last=False)
                self._bytes -= len(evicted)

    def __len__(self) -> int:
        return len(self._data)
