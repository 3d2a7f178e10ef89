"""Rebuild throughput and memory: replay N events into an empty read model vs raw XRANGE.

Setup (not measured): a private engine (`LocalEngine`), N events written as whole run
lifecycles (requested, started, completed, uploaded, pointer set) by a pipelined writer of
the same entries `EventLog.append` makes (the `event` field and the correlation index). Then, in the same run: raw `XRANGE` reading of the same streams (the
baseline), `rebuild` (replay, decode, project, reconcile and write the whole read model into
an empty one) in a child process so its peak RSS (`ru_maxrss`) is its own, and raw `XRANGE`
again: the baseline is the mean of the two, so a change in machine load during the run
weighs on both sides. Prints events/s of each, the ratio (target >= 0.3) and the rebuild's
peak memory (target < 1 GiB). The rebuild pauses the cyclic garbage collector; with
`--gc-effect` a second rebuild, into an emptied read model, runs with the collector on, and
the share of the rebuild's time the pause saves is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis

from events import (
    FIELD,
    ArtifactPointer,
    ArtifactPointerSet,
    ArtifactUploaded,
    ArtifactUploadedPayload,
    Event,
    LocalEngine,
    NodePayload,
    PointerSetPayload,
    SignedFields,
    SigningKeys,
    TrainingCompleted,
    TrainingCompletedPayload,
    TrainingMetrics,
    TrainingRequested,
    TrainingSpec,
    TrainingStarted,
    connect,
    encode,
    names,
    stream_for,
    text,
)
from projections import rebuild_read_model

BATCH = 1000
FILE_ID = "cd" * 32
KEYS = SigningKeys(current="bench-signing-key-" + "0" * 46)
"""Signs the replayed pointers, and verifies them as the rebuild replays them."""


def lifecycle(run_id: str) -> list[Event]:
    """The five events of one successful run."""
    metrics = TrainingMetrics(
        steps=100, tokens=51200, seconds=12.5, tokens_per_second=4096.0, train_loss=3.2
    )
    uploaded = ArtifactUploadedPayload(
        subject="run", node_id="node-1", file_id=FILE_ID, size=1 << 20, sha256=FILE_ID, seconds=1
    )
    signed = SignedFields(subject="run", subject_id=run_id, file_id=FILE_ID, size=1 << 20)
    pointer = PointerSetPayload(
        subject="run",
        pointer=ArtifactPointer(file_id=FILE_ID),
        size=1 << 20,
        signature=KEYS.sign(signed),
    )
    return [
        TrainingRequested(correlation_id=run_id, payload=TrainingSpec(corpus_file_id=FILE_ID)),
        TrainingStarted(correlation_id=run_id, payload=NodePayload(node_id="node-1")),
        TrainingCompleted(
            correlation_id=run_id,
            payload=TrainingCompletedPayload(node_id="node-1", metrics=metrics),
        ),
        ArtifactUploaded(correlation_id=run_id, payload=uploaded),
        ArtifactPointerSet(correlation_id=run_id, payload=pointer),
    ]


def append(client: redis.Redis, count: int) -> None:
    """Append `count` events (whole lifecycles, then a partial one) in batches."""
    pending: list[Event] = []
    while count > 0:
        events = lifecycle(uuid.uuid4().hex)[:count]
        count -= len(events)
        pending.extend(events)
        if len(pending) >= BATCH or count == 0:
            write(client, pending)
            pending = []


def write(client: redis.Redis, events: list[Event]) -> None:
    """The entries `EventLog.append` makes for `events`, pipelined: all XADDs, then the
    correlation index. Services append one event per call; a million of those would make
    the setup longer than the measurement, and the rebuild reads the same entries either way.
    """
    streams = [stream_for(event) for event in events]
    pipe = client.pipeline(transaction=False)
    for stream, event in zip(streams, events, strict=True):
        pipe.xadd(stream, {FIELD: encode(event)[FIELD]})
    ids = [text(entry_id) for entry_id in pipe.execute()]
    for stream, event, entry_id in zip(streams, events, ids, strict=True):
        pipe.rpush(names.correlation_key(event.correlation_id), f"{stream} {entry_id}")
    pipe.execute()


def raw_xrange(client: redis.Redis) -> int:
    """Read every entry of every stream with bare XRANGE; returns how many."""
    read = 0
    for stream in names.ALL_STREAMS:
        start = "-"
        while rows := client.xrange(stream, start, "+", 2000):
            read += len(rows)
            last = rows[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else str(last))
    return read


def timed_xrange(client: redis.Redis) -> tuple[float, int]:
    """Seconds and entries of one raw XRANGE pass."""
    began = time.perf_counter()
    read = raw_xrange(client)
    return time.perf_counter() - began, read


def clear_read_model(client: redis.Redis) -> None:
    """Delete every read-model key and checkpoint; the log and its correlation index stay."""
    for pattern in ("runs:*", "tokenizer:*", "checkpoint:*"):
        for key in client.scan_iter(match=pattern, count=10_000):
            client.delete(key)


def rebuild_child(url: str, *, collector: bool = False) -> dict[str, float]:
    """One rebuild in a child process; its figures (with the cyclic collector left on, or
    paused as the rebuild does)."""
    command = [sys.executable, __file__, "--child", url]
    command += ["--collector-on"] if collector else []
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figures: dict[str, float] = json.loads(out)
    return figures


@contextlib.contextmanager
def _collector_left_on() -> Iterator[None]:
    yield


def child(url: str, *, collector: bool) -> None:
    """Run one rebuild here and print its figures (this process's peak RSS is its own)."""
    if collector:  # undo the rebuild's pause, only to measure what it saves
        module = importlib.import_module("projections.rebuild")
        vars(module)["_collector_paused"] = _collector_left_on
    client = connect(url)
    began = time.perf_counter()
    report = rebuild_read_model(client, KEYS)
    seconds = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    missing = len(report.drift.missing)
    print(json.dumps({"events": report.events, "seconds": seconds, "peak_kib": peak_kib,
                      "written": missing}))  # fmt: skip


def main() -> None:
    """Set up, measure raw XRANGE, then rebuild in a child process; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--gc-effect", action="store_true")
    parser.add_argument("--child", metavar="URL")
    parser.add_argument("--collector-on", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, collector=args.collector_on)
        return
    with_collector: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as data:
        engine = LocalEngine(Path(data))
        engine.start()
        try:
            client = connect(engine.url)
            began = time.perf_counter()
            append(client, args.events)
            print(f"setup: appended {args.events} events in {time.perf_counter() - began:.1f} s")
            before, read = timed_xrange(client)
            figures = rebuild_child(engine.url)
            after, _ = timed_xrange(client)
            if args.gc_effect:
                clear_read_model(client)
                with_collector = rebuild_child(engine.url, collector=True)
        finally:
            engine.stop()
    raw_s = (before + after) / 2
    raw_rate, rebuild_rate = read / raw_s, figures["events"] / figures["seconds"]
    peak_mib = figures["peak_kib"] / 1024
    print(f"raw XRANGE: {read} entries in {before:.1f} s before, {after:.1f} s after the rebuild")
    print(f"raw XRANGE: mean {raw_s:.1f} s = {raw_rate:,.0f} entries/s")
    print(
        f"rebuild:    {figures['events']} events in {figures['seconds']:.1f} s = "
        f"{rebuild_rate:,.0f} events/s ({figures['written']} keys written)"
    )
    print(f"ratio {rebuild_rate / raw_rate:.2f} (target >= 0.3)")
    print(f"rebuild peak memory {peak_mib:.0f} MiB (target < 1024 MiB)")
    if with_collector:
        saved = 1 - figures["seconds"] / with_collector["seconds"]
        print(
            f"with the cyclic collector on: {with_collector['seconds']:.1f} s; "
            f"pausing it saves {saved:.0%} of the rebuild's time"
        )


if __name__ == "__main__":
    main()
