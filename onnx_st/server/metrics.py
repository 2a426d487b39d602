"""Prometheus text exposition of counters, gauges and histograms kept in memory (no dependency)."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

Labels = tuple[tuple[str, str], ...]

DURATION_BUCKETS = tuple(round(0.00001 * 1.5 ** i, 8) for i in range(1, 36))
COUNT_BUCKETS = tuple(float(2 ** i) for i in range(21))

HELP = {
    "te_request_count": ("counter", "Requests received, by route and method (single or batch)"),
    "te_request_success": ("counter", "Requests answered with 200"),
    "te_request_failure": ("counter", "Requests answered with an error, by error type"),
    "te_cache_hit": ("counter", "Requests answered from the result cache"),
    "te_request_duration": ("histogram", "Seconds from request to response"),
    "te_request_queue_duration": ("histogram", "Seconds a request waited in the batch queue"),
    "te_request_inference_duration": ("histogram", "Seconds of the model call a request was part of"),
    "te_request_input_length": ("histogram", "Tokens per input text"),
    "te_batch_next_size": ("histogram", "Inputs per merged batch"),
    "te_batch_next_tokens": ("histogram", "Tokens per merged batch"),
    "te_queue_size": ("gauge", "Requests waiting in the batch queue"),
}


def _labels(labels: dict[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


def _fmt_labels(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    items = list(labels) + ([extra] if extra else [])
    if not items:
        return ""
    esc = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, v in items)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(items, esc)) + "}"


def _num(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


class _Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.buckets, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.total += value
        self.n += 1


class Metrics:
    """Thread-safe metric store; :meth:`render` gives the Prometheus text format (version 0.0.4)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {}
        self._histograms: dict[str, dict[Labels, _Histogram]] = {}

    def inc(self, name: str, labels: dict[str, str] | None = None, value: float = 1.0) -> None:
        """Add ``value`` to a counter."""
        with self._lock:
            series = self._values.setdefault(name, {})
            key = _labels(labels)
            series[key] = series.get(key, 0.0) + value

    def set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        """Set a gauge."""
        with self._lock:
            self._values.setdefault(name, {})[_labels(labels)] = value

    def observe(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        """Record one observation of a histogram."""
        buckets = DURATION_BUCKETS if name.endswith("duration") else COUNT_BUCKETS
        with self._lock:
            series = self._histograms.setdefault(name, {})
            key = _labels(labels)
            if key not in series:
                series[key] = _Histogram(buckets)
            series[key].observe(value)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of a counter or gauge (0 when never set)."""
        with self._lock:
            return self._values.get(name, {}).get(_labels(labels), 0.0)

    def render(self) -> str:
        """Every metric in the Prometheus text exposition format."""
        lines: list[str] = []
        with self._lock:
            for name in sorted(set(self._values) | set(self._histograms)):
                kind, text = HELP.get(name, ("untyped", name))
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                for labels, value in sorted(self._values.get(name, {}).items()):
                    lines.append(f"{name}{_fmt_labels(labels)} {_num(value)}")
                for labels, hist in sorted(self._histograms.get(name, {}).items()):
                    cumulative = 0
                    for bound, count in zip(hist.buckets, hist.counts):
                        cumulative += count
                        lines.append(f"{name}_bucket{_fmt_labels(labels, ('le', _num(bound)))} {cumulative}")
                    lines.append(f"{name}_bucket{_fmt_labels(labels, ('le', '+Inf'))} {hist.n}")
                    lines.append(f"{name}_sum{_fmt_labels(labels)} {_num(hist.total)}")
                    lines.append(f"{name}_count{_fmt_labels(labels)} {hist.n}")
        return "\n".join(lines) + "\n"
