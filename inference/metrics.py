"""The inference service's Prometheus metrics.

Requests (count and latency by route and status) and model loads (seconds, in-memory hits and
misses) are observed as they happen. The artifact cache (hits, misses, evictions, download
bytes and seconds, bytes on disk) and the generator (tokens generated, batch sizes) keep their
own counters, read at scrape time. Each app has its own registry, so several apps (tests) never
collide.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.routing import Route
from starlette.types import Scope

from databank import ArtifactFetcher
from inference.generation import Generator

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)


class CacheCollector(Collector):
    """The artifact cache's counters and size."""

    def __init__(self, fetcher: ArtifactFetcher) -> None:
        self.fetcher = fetcher

    def collect(self) -> Iterable[Metric]:
        """One scrape: the cache's counters now."""
        stats = self.fetcher.stats()
        prefix = "trainledger_inference_artifact"
        counters = (
            ("cache_hits", "Artifacts served from the disk cache", stats.hits),
            ("cache_misses", "Artifacts downloaded and extracted", stats.misses),
            ("cache_evictions", "Artifacts evicted from the disk cache", stats.evictions),
            ("download_bytes", "Bytes of artifacts downloaded", stats.download_bytes),
            ("download_seconds", "Seconds spent downloading artifacts", stats.download_seconds),
        )
        for name, doc, value in counters:
            yield CounterMetricFamily(f"{prefix}_{name}", doc, value=value)
        yield GaugeMetricFamily(
            f"{prefix}_cache_bytes", "Bytes of extracted artifacts on disk", value=stats.bytes
        )


class GeneratorCollector(Collector):
    """Tokens generated and batch sizes."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def collect(self) -> Iterable[Metric]:
        """One scrape: the generator's counters now."""
        stats = self.generator.stats()
        yield CounterMetricFamily(
            "trainledger_inference_tokens_generated",
            "Tokens generated",
            value=stats.tokens_generated,
        )
        buckets = [
            (str(bound), sum(n for rows, n in stats.batch_rows.items() if rows <= bound))
            for bound in BATCH_BUCKETS
        ]
        buckets.append(("+Inf", sum(stats.batch_rows.values())))
        yield HistogramMetricFamily(
            "trainledger_inference_batch_rows",
            "Sequences per decoded batch",
            buckets=buckets,
            sum_value=sum(rows * n for rows, n in stats.batch_rows.items()),
        )


class InferenceMetrics:
    """The service's registry."""

    def __init__(self, fetcher: ArtifactFetcher, generator: Generator) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CacheCollector(fetcher))
        self.registry.register(GeneratorCollector(generator))
        self.requests = Counter(
            "trainledger_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "trainledger_http_request_duration_seconds",
            "HTTP request latency (a stream's: until its last event)",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.load_seconds = Histogram(
            "trainledger_inference_model_load_seconds",
            "Seconds to load a model into memory (its artifact already on disk)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        models = "trainledger_inference_model_cache"
        self.model_hits = Counter(
            f"{models}_hits", "Requests whose model was in memory", registry=self.registry
        )
        self.model_misses = Counter(
            f"{models}_misses", "Requests that loaded their model", registry=self.registry
        )

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        """Count one request and its latency (`RequestIdMiddleware` calls it)."""
        route = scope.get("route")
        template = route.path if isinstance(route, Route) else "unmatched"
        method = str(scope["method"])
        self.requests.labels(method, template, str(status)).inc()
        self.latency.labels(method, template).observe(seconds)
