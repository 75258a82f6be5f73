"""Prometheus metrics, one registry per app so tests and several apps in a process don't collide.

With more than one gunicorn worker each worker counts for itself; scale with replicas
(one worker each) rather than workers if you scrape per-process numbers.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    """The metrics every service exports, plus hooks for engine queues and batches."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route template, method and status.",
            ["service", "route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to produce the response (streams: time to the first byte).",
            ["service", "route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "engine_queue_depth",
            "Items waiting in an engine queue.",
            ["service", "queue"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "engine_batch_size",
            "Items per model call.",
            ["service", "queue"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "engine_batch_duration_seconds",
            "Time per model call.",
            ["service", "queue"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "Requests being answered now (a stream counts until its view returns).",
            ["service"],
            registry=self.registry,
        )
        self.in_use = Gauge(
            "engine_model_in_use",
            "Requests holding the model (1 at most where it serves one at a time, up to the batch where it batches).",
            ["service", "queue"],
            registry=self.registry,
        )
        self.streams_stopped = Counter(
            "engine_streams_stopped_total",
            "Streams and answers left before their end (the client went); their work was stopped.",
            ["service", "queue"],
            registry=self.registry,
        )
        self.engine_errors = Counter(
            "engine_errors_total",
            "Model calls that raised.",
            ["service", "queue"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(self.service, route, method, str(status)).inc()
        self.latency.labels(self.service, route, method).observe(seconds)

    def track_queue(self, queue: str, depth: Callable[[], int]) -> None:
        """Export ``depth()`` as the queue's current depth at scrape time."""
        self.queue_depth.labels(self.service, queue).set_function(depth)

    def track_in_use(self, queue: str, in_use: Callable[[], int]) -> None:
        """Export ``in_use()`` (requests holding the queue's model) at scrape time."""
        self.in_use.labels(self.service, queue).set_function(in_use)

    def observe_stopped(self, queue: str) -> None:
        """Count one stream whose consumer left before its end."""
        self.streams_stopped.labels(self.service, queue).inc()

    def observe_batch(self, queue: str, size: int, seconds: float, failed: bool) -> None:
        """Record one model call of ``size`` items."""
        self.batch_size.labels(self.service, queue).observe(size)
        self.batch_seconds.labels(self.service, queue).observe(seconds)
        if failed:
            self.engine_errors.labels(self.service, queue).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
