"""Event log throughput: the paths the services run against raw redis-py, on one private engine.

Prints events/s for (1) `EventLog.append` with an idempotency key (what the API does for
every command, from its threadpool) from 16 threads vs one raw XADD per call from 16 threads,
both on one shared client, and (2) consume+ack through `Consumer` with a no-op handler vs
XREADGROUP COUNT 100 + XACK; and the ratios (targets: append >= 0.5, consume >= 0.5).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from events import (
    Consumer,
    Delivery,
    Event,
    EventLog,
    Handlers,
    LocalEngine,
    RuntimeConfig,
    TrainingCompleted,
    connect,
    ensure_group,
    names,
)

BATCH = 100
THREADS = 16


def sample_events(count: int) -> list[Event]:
    """Realistic events: a completed run with its metrics."""
    payload = {"node_id": "node-1", "metrics": {"steps": 100, "tokens": 51200, "seconds": 12.5,
               "tokens_per_second": 4096.0, "train_loss": 3.2, "val_loss": 3.4, "perplexity": 30.0}}  # fmt: skip
    return [TrainingCompleted(correlation_id=f"run-{i}", payload=payload) for i in range(count)]


def timed(work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def raw_append(client: redis.Redis, events: list[Event]) -> None:
    """One XADD per event, from `THREADS` threads."""

    def append(event: Event) -> None:
        client.xadd(names.TRAINING_STREAM, {b"event": event.model_dump_json()})

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(append, events))


def log_append(client: redis.Redis, events: list[Event]) -> None:
    """`EventLog.append` with an idempotency key per event, from `THREADS` threads."""
    log = EventLog(client)

    def append(event: Event) -> None:
        log.append(event, idempotency_key=f"bench:{event.event_id}")

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(append, events))


def raw_consume(client: redis.Redis, total: int) -> None:
    ensure_group(client, names.TRAINING_STREAM, "raw")
    done = 0
    while done < total:
        reply = client.xreadgroup("raw", "c", {names.TRAINING_STREAM: ">"}, count=BATCH, block=100)
        for _, rows in reply if isinstance(reply, list) else []:
            ids = [row[0] for row in rows]
            client.xack(names.TRAINING_STREAM, "raw", *ids)
            done += len(ids)


def runtime_consume(client: redis.Redis, total: int) -> None:
    def noop(event: Event, delivery: Delivery) -> None:
        return None

    consumer = Consumer(
        client,
        streams=[names.TRAINING_STREAM],
        group="runtime",
        handlers=Handlers().on_any(noop),
        config=RuntimeConfig(block_ms=100, batch_size=BATCH),
    )
    consumer.ensure_groups()
    done = 0
    while done < total:
        done += consumer.poll()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    events = sample_events(args.events)
    with tempfile.TemporaryDirectory() as data_dir:
        engine = LocalEngine(Path(data_dir))
        engine.start()
        try:
            client = connect(engine.url)
            raw_s = timed(lambda: raw_append(client, events))
            client.flushdb()
            log_s = timed(lambda: log_append(client, events))
            raw_c = timed(lambda: raw_consume(client, args.events))
            run_c = timed(lambda: runtime_consume(client, args.events))
        finally:
            engine.stop()
    n = args.events
    print(f"events: {n}, {THREADS} appending threads, consume batch {BATCH}, private valkey")
    print(
        f"append   raw XADD x{THREADS} threads {n / raw_s:8.0f} ev/s | EventLog.append+key {n / log_s:10.0f} ev/s | ratio {raw_s / log_s:.2f} (target >= 0.5)"
    )
    print(
        f"consume  raw XREADGROUP+XACK {n / raw_c:8.0f} ev/s | Consumer no-op       {n / run_c:10.0f} ev/s | ratio {raw_c / run_c:.2f} (target >= 0.5)"
    )


if __name__ == "__main__":
    main()
