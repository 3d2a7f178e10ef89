"""Consumers announce themselves while they run: a running one is live, however long its
handler takes; one that stops withdraws; one that dies without cleanup expires."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from events import (
    Consumer,
    Delivery,
    EventLog,
    Handlers,
    RuntimeConfig,
    TrainingCancelRequested,
    connect_async,
    live_consumers,
    names,
)
from events.liveness import Announcement, _counts
from tests.waiting import wait_until

CONFIG = RuntimeConfig(block_ms=20, visibility_timeout_ms=600)
"""Announcements live 600 ms, renewed every 200 ms."""


def live(url: str, *groups: str) -> dict[str, int]:
    """What `/readyz` asks, from a client of its own."""

    async def ask() -> dict[str, int]:
        client = connect_async(url)
        try:
            return await live_consumers(client, groups)
        finally:
            await client.aclose()

    return asyncio.run(ask())


def member(client: redis.Redis, group: str, handlers: Handlers | None = None) -> Consumer:
    return Consumer(
        client,
        streams=[names.TRAINING_STREAM],
        group=group,
        handlers=handlers or Handlers(),
        config=CONFIG,
    )


@pytest.fixture
def running() -> Iterator[Callable[[Consumer], threading.Thread]]:
    """Start consumers in threads; stop and join whatever the test left running."""
    started: list[tuple[Consumer, threading.Thread]] = []

    def start(consumer: Consumer) -> threading.Thread:
        thread = threading.Thread(target=consumer.run, daemon=True)
        thread.start()
        started.append((consumer, thread))
        return thread

    yield start
    for consumer, thread in started:
        consumer.stop()
        thread.join(10)


def test_a_running_consumer_is_live_until_it_stops(
    redis_url: str, redis_client: redis.Redis, running: Callable[[Consumer], threading.Thread]
) -> None:
    assert live(redis_url, "a", "b") == {"a": 0, "b": 0}
    first, second = member(redis_client, "a"), member(redis_client, "a")
    threads = [running(first), running(second)]

    wait_until(lambda: live(redis_url, "a", "b") == {"a": 2, "b": 0}, what="two live in a")
    first.stop()
    threads[0].join(10)
    assert live(redis_url, "a") == {"a": 1}  # withdrawn at once, not left to expire
    second.stop()
    threads[1].join(10)
    assert live(redis_url, "a") == {"a": 0}
    assert not redis_client.exists(names.live_consumers_key("a"))


def test_a_consumer_busy_in_a_long_handler_stays_live(
    redis_url: str, redis_client: redis.Redis, running: Callable[[Consumer], threading.Thread]
) -> None:
    """A training consumer reads once and then trains for minutes: still alive."""
    started, release = threading.Event(), threading.Event()

    def train(event: TrainingCancelRequested, delivery: Delivery) -> None:
        started.set()
        release.wait(30)

    EventLog(redis_client).append(TrainingCancelRequested(correlation_id="long"))
    busy = member(redis_client, "training", Handlers().on(TrainingCancelRequested, train))
    running(busy)
    assert started.wait(10)
    until = time.monotonic() + 3 * CONFIG.visibility_timeout_ms / 1000
    counts = []
    while time.monotonic() < until:
        counts.append(live(redis_url, "training")["training"])
    release.set()

    assert set(counts) == {1}
    wait_until(lambda: busy.acked == 1, what="the long entry acked")


def test_a_consumer_killed_without_cleanup_expires(
    redis_url: str, redis_client: redis.Redis
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.events.consumer_process", redis_url, "doomed"],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        wait_until(lambda: live(redis_url, "g") == {"g": 1}, timeout=30, what="it announces")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    key = names.live_consumers_key("g")
    assert redis_client.zscore(key, "doomed") is not None  # nobody withdrew it

    wait_until(lambda: live(redis_url, "g") == {"g": 0}, what="the announcement expires")
    wait_until(lambda: not redis_client.exists(key), what="the set expires with it")


def test_an_announcement_prunes_the_expired_ones(redis_url: str, redis_client: redis.Redis) -> None:
    gone = Announcement(redis_client, "g", "gone", ttl_ms=300)
    gone.renew()
    assert live(redis_url, "g") == {"g": 1}
    wait_until(lambda: live(redis_url, "g") == {"g": 0}, what="its time to live passes")
    gone.renew()  # back: a consumer that was slow to renew is live again
    assert live(redis_url, "g") == {"g": 1}
    wait_until(lambda: live(redis_url, "g") == {"g": 0}, what="its time to live passes again")
    Announcement(redis_client, "g", "here", ttl_ms=60_000).renew()

    assert redis_client.zrange(names.live_consumers_key("g"), 0, -1) == [b"here"]
    assert 0 < redis_client.pttl(names.live_consumers_key("g")) <= 60_000


def test_a_malformed_reply_is_refused() -> None:
    with pytest.raises(TypeError, match="unexpected live consumers reply"):
        _counts(["a", "b"], [1])
