"""Prometheus metrics: requests served, and per consumer group how far behind it is.

Group gauges are computed at scrape time (`events.group_stats`), for the groups the system
always has (`training`, `projector` on every stream) and every other group found on the
streams (each node's `upload:<node>`). Each app has its own registry, so several apps (tests)
never collide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Route
from starlette.types import Scope

from events import GroupStats, group_stats, names, text

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _groups(client: redis.Redis) -> list[tuple[str, str]]:
    """(stream, group) pairs to report: the expected ones and every group that exists."""
    pairs = {(names.TRAINING_STREAM, names.TRAINING_GROUP)}
    pairs.update((stream, names.PROJECTOR_GROUP) for stream in names.ALL_STREAMS)
    for stream in names.ALL_STREAMS:
        if client.exists(stream):
            pairs.update((stream, text(row["name"])) for row in client.xinfo_groups(stream))
    return sorted(pairs)


def group_table(client: redis.Redis) -> list[GroupStats]:
    """The stats of every group `/metrics` reports, in (stream, group) order (also `/ui`'s)."""
    return [group_stats(client, stream, group) for stream, group in _groups(client)]


class GroupCollector(Collector):
    """Lag, pending, oldest pending age and dead letters per group and stream."""

    def __init__(self, client: Callable[[], redis.Redis]) -> None:
        self.client = client

    def collect(self) -> Iterable[Metric]:
        """One scrape: query the engine now; report it down instead of failing the scrape."""
        up = GaugeMetricFamily("trainledger_engine_up", "1 when the event log answered")
        labels = ["group", "stream"]
        lag = GaugeMetricFamily("trainledger_group_lag", "Entries not yet delivered", labels=labels)
        pending = GaugeMetricFamily(
            "trainledger_group_pending", "Entries delivered, not acknowledged", labels=labels
        )
        age = GaugeMetricFamily(
            "trainledger_group_oldest_pending_age_seconds",
            "Age of the oldest pending entry",
            labels=labels,
        )
        dead = GaugeMetricFamily(
            "trainledger_group_dead_letters", "Entries in the dead-letter stream", labels=labels
        )
        try:
            client = self.client()
            stats = group_table(client)
        except (redis.ConnectionError, redis.TimeoutError):
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        for stat in stats:
            key = [stat.group, stat.stream]
            lag.add_metric(key, stat.lag)
            pending.add_metric(key, stat.pending)
            age.add_metric(key, stat.oldest_pending_age_s)
            dead.add_metric(key, stat.dead_letters)
        return [up, lag, pending, age, dead]


class ApiMetrics:
    """The API's registry: request counter and latency histogram, plus group gauges read
    through `client` (called at scrape time: the connection exists only while the app runs)."""

    def __init__(self, client: Callable[[], redis.Redis]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(GroupCollector(client))
        self.requests = Counter(
            "trainledger_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.latency = Histogram(
            "trainledger_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        """Count one request and its latency by method, route template and status (label
        children cached: this runs per request); `RequestIdMiddleware` calls it."""
        route = scope.get("route")
        method, template = (
            str(scope["method"]),
            route.path if isinstance(route, Route) else "unmatched",
        )
        key = (method, template, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(method, template, str(status)),
                self.latency.labels(method, template),
            )
        children[0].inc()
        children[1].observe(seconds)
