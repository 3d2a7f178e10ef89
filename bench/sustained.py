"""Sustained load: append -> read-model visibility under a steady 1,000 events/s, against the
raw XADD -> blocked-reader latency of the same engine in the same run.

For `--seconds` (300 by default) the driver appends `training.requested` events at a steady
`--rate` (1,000/s) through `EventLog.append`, each with an idempotency key and the request's
fingerprint, as the API does for `POST /runs/train`; a real `Projector` (default runtime
config, its own process) keeps the read model on a private engine (`LocalEngine`). Beside
each append it XADDs one raw entry to a probe stream.

How visibility is observed: the engine publishes a keyspace notification for every write to a
run's status hash (`notify-keyspace-events Kh`, set for this bench). The apply script writes
the record and the checkpoint in one atomic step, and a notification leaves the engine only
after that step, so the first notification for `runs:<run_id>:status` is the moment a reader
can see the record. An observer process subscribed to those notifications stamps each on
receipt; in the same process a reader blocked in `XREAD BLOCK` on the probe stream stamps each
raw entry. Lag runs from just before the append (or XADD) call to the stamp; every stamp is
`time.monotonic_ns()`, one clock for all processes on the machine. Every `--sample-s` seconds
the driver prints the projector group's backlog (lag: entries not yet delivered; pending:
delivered, not yet acknowledged) over all three streams.

Prints p50/p99/max of both lags, the backlog over time, and whether the targets held: p99
under 20 ms, and no growth in the backlog (the median of the last third of the samples is at
most the first third's plus one batch of 100).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import FrameType

import redis
from redis.client import PubSub

from events import (
    EventLog,
    LocalEngine,
    SigningKeys,
    TrainingRequested,
    TrainingSpec,
    connect,
    entries,
    fingerprint,
    group_stats,
    names,
    text,
)
from projections import Projector

PROBE_STREAM = "bench:probe"
"""The raw stream: one XADD beside each append, read by a blocked XREAD."""
END_RUN = "end-of-bench"
"""A status hash written after the drain: its notification closes the observer's stream."""
STATUS_PATTERN = "__keyspace@0__:" + names.run_status_key("*")
SPEC = TrainingSpec(corpus_file_id="ab" * 32)
BATCH = 100
"""The projector's default batch size: the backlog one read may legitimately hold."""
P99_TARGET_MS = 20.0
KEYS = SigningKeys(current="bench-signing-key-" + "0" * 46)
"""The projector's keys (the bench appends no pointer)."""


# -- the children ------------------------------------------------------------------------------


def project(url: str) -> None:
    """Run the projector until SIGTERM (the `trainledger projector` loop)."""
    Projector(connect(url), KEYS).serve()


def subscribed(client: redis.Redis) -> PubSub:
    """A subscription to the notifications of every run's status hash."""
    pubsub = PubSub(client.connection_pool)
    pubsub.psubscribe(STATUS_PATTERN)
    if pubsub.get_message(timeout=10.0) is None:  # the confirmation: subscribed from here on
        raise RuntimeError("no confirmation of the keyspace subscription")
    pubsub.ignore_subscribe_messages = True
    return pubsub


def _visible(pubsub: PubSub, seen: dict[str, int]) -> None:
    """Stamp the first notification of each run's status hash until the end marker's."""
    while True:
        message = pubsub.get_message(timeout=1.0)
        if message is None:
            continue
        stamp = time.monotonic_ns()
        run_id = text(message["channel"]).split(":")[2]
        if run_id == END_RUN:
            break
        seen.setdefault(run_id, stamp)
    pubsub.close()


def _raw(client: redis.Redis, lags: list[int]) -> None:
    """Stamp each probe entry as a reader blocked in XREAD receives it, until the end entry."""
    last = "0-0"
    while True:
        reply = client.xread({PROBE_STREAM: last}, block=1000)
        stamp = time.monotonic_ns()
        for _, rows in reply if isinstance(reply, list) else []:
            for entry_id, fields in entries(rows):
                last, sent = entry_id, fields[b"sent"]
                if sent == b"end":
                    return
                lags.append(stamp - int(sent))


def observe(url: str, out: Path) -> None:
    """Both observers in threads of one process; their stamps to `out` as JSON at the end."""
    seen: dict[str, int] = {}
    lags: list[int] = []
    threads = [
        threading.Thread(target=_visible, args=(subscribed(connect(url)), seen)),
        threading.Thread(target=_raw, args=(connect(url), lags)),
    ]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    for thread in threads:
        thread.join()
    out.write_text(json.dumps({"visible": seen, "raw": lags}))


# -- the driver --------------------------------------------------------------------------------


def backlog(client: redis.Redis) -> tuple[int, int]:
    """The projector group's (lag, pending) summed over the three streams."""
    stats = [group_stats(client, stream, names.PROJECTOR_GROUP) for stream in names.ALL_STREAMS]
    return sum(s.lag for s in stats), sum(s.pending for s in stats)


class Sampler(threading.Thread):
    """Print and keep the projector's backlog every `every` seconds while the load runs."""

    def __init__(self, client: redis.Redis, every: float, started: float) -> None:
        super().__init__(daemon=True)
        self.client, self.every, self.started = client, every, started
        self.samples: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            lag, pending = backlog(self.client)
            self.samples.append(lag + pending)
            elapsed = time.monotonic() - self.started
            appended = int(self.client.xlen(names.TRAINING_STREAM))
            print(
                f"  t={elapsed:5.0f} s  appended {appended:7d}  projector lag {lag:5d}"
                f"  pending {pending:4d}",
                flush=True,
            )


def load(client: redis.Redis, rate: float, seconds: float, sent: dict[str, int]) -> float:
    """Append at a steady `rate` for `seconds` (a late tick is sent at once, not skipped);
    the achieved rate."""
    log = EventLog(client)
    total = int(rate * seconds)
    started = time.monotonic()
    for i in range(total):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        run_id = f"r{i}"
        event = TrainingRequested(correlation_id=run_id, payload=SPEC)
        key = f"runs.train:{uuid.uuid4().hex}"
        sent[run_id] = time.monotonic_ns()
        log.append(event, idempotency_key=key, fingerprint=fingerprint(SPEC))
        client.xadd(PROBE_STREAM, {"sent": str(time.monotonic_ns())})
    return total / (time.monotonic() - started)


def percentiles(lags_ns: list[int]) -> str:
    """p50 / p99 / max of `lags_ns`, in milliseconds."""
    ordered = sorted(lags_ns)
    p50, p99 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]
    return f"p50 {p50 / 1e6:6.2f} ms  p99 {p99 / 1e6:6.2f} ms  max {ordered[-1] / 1e6:7.2f} ms"


def p99_ms(lags_ns: list[int]) -> float:
    return sorted(lags_ns)[int(len(lags_ns) * 0.99)] / 1e6


def no_growth(samples: list[int]) -> bool:
    """The typical backlog (the median) of the last third is at most the first third's plus
    one batch: a projector that cannot hold the rate falls further behind sample by sample,
    while a burst it drains (a descheduled process) leaves the median alone."""
    third = max(1, len(samples) // 3)
    return statistics.median(samples[-third:]) <= statistics.median(samples[:third]) + BATCH


def wait_drained(client: redis.Redis, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while backlog(client) != (0, 0):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the projector did not drain within {timeout} s")
        time.sleep(0.05)


def run(args: argparse.Namespace, url: str, work: Path) -> None:
    client = connect(url)
    client.config_set("notify-keyspace-events", "Kh")
    me = [sys.executable, __file__, "--url", url]
    projector = subprocess.Popen([*me, "--child", "project"])
    out = work / "observed.json"
    observer = subprocess.Popen(
        [*me, "--child", "observe", "--out", str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert observer.stdout is not None
        assert observer.stdout.readline().strip() == "ready"
        sent: dict[str, int] = {}
        sampler = Sampler(client, args.sample_s, time.monotonic())
        print(
            f"sustained load: {args.rate:.0f} events/s for {args.seconds:.0f} s, EventLog.append"
            " + idempotency key + fingerprint; projector and observers in their own processes;"
            " private valkey"
        )
        sampler.start()
        achieved = load(client, args.rate, args.seconds, sent)
        sampler.done.set()
        sampler.join()
        wait_drained(client)
        client.hset(names.run_status_key(END_RUN), "end", "1")
        client.xadd(PROBE_STREAM, {"sent": "end"})
        observer.wait(60)
    finally:
        for child in (projector, observer):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                child.wait(20)
    observed = json.loads(out.read_text())
    visible: dict[str, int] = observed["visible"]
    lags = [visible[run_id] - stamp for run_id, stamp in sent.items() if run_id in visible]
    raw: list[int] = observed["raw"]
    missing = len(sent) - len(lags)
    print(
        f"appended {len(sent)} events at {achieved:.1f}/s; never seen in the read model: {missing}"
    )
    print(f"append -> read-model visible    {percentiles(lags)}  (n={len(lags)})")
    print(f"raw XADD -> XREAD BLOCK reader  {percentiles(raw)}  (n={len(raw)})")
    print(f"p99 ratio visible / raw: {p99_ms(lags) / p99_ms(raw):.1f}")
    held_p99 = p99_ms(lags) < P99_TARGET_MS and missing == 0
    samples = sampler.samples or [0]
    held_growth = no_growth(samples)
    print(
        f"backlog samples (lag+pending, every {args.sample_s:.0f} s): {samples}, max {max(samples)}"
    )
    print(f"target: p99 < {P99_TARGET_MS:.0f} ms: {'held' if held_p99 else 'NOT held'}")
    print(f"target: no growth in pending: {'held' if held_growth else 'NOT held'}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--child", choices=["project", "observe"])
    parser.add_argument("--url", default="")
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    args = _arguments()
    if args.child == "project":
        project(args.url)
        return
    if args.child == "observe":
        signal.signal(signal.SIGTERM, _stop)
        observe(args.url, args.out)
        return
    with tempfile.TemporaryDirectory() as data:
        engine = LocalEngine(Path(data) / "engine")
        engine.start()
        try:
            run(args, engine.url, Path(data))
        finally:
            engine.stop()


if __name__ == "__main__":
    main()
