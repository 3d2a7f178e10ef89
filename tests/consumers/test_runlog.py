"""A run's log stream: words and progress numbers, capped."""

from __future__ import annotations

import redis

from consumers.runlog import RunLog
from consumers.trainer import Progress
from events import EventLog, names


def test_lines_and_progress_reach_the_run_stream(redis_client: redis.Redis) -> None:
    lines = RunLog(redis_client, "r1")
    lines.say("started", "training started on node n")
    lines.progress(
        Progress(step=2, total_steps=4, loss=3.5, tokens_per_second=1000.0, eta_seconds=1.25)
    )

    rows = [
        entry.fields for entry in EventLog(redis_client).read_range(names.run_logs_stream("r1"))
    ]
    assert rows[0] == {b"kind": b"started", b"message": b"training started on node n"}
    assert rows[1] == {
        b"kind": b"progress",
        b"message": b"step 2/4 loss 3.5000 1000 tokens/s eta 1.2s",
        b"step": b"2",
        b"total_steps": b"4",
        b"loss": b"3.5",
        b"tokens_per_second": b"1000.0",
        b"eta_seconds": b"1.25",
    }


def test_the_stream_is_trimmed_to_about_its_cap(redis_client: redis.Redis) -> None:
    lines = RunLog(redis_client, "r1", maxlen=10)
    for step in range(500):
        lines.say("started", f"line {step}")
    # Approximate trimming drops whole nodes (100 entries by default): cheap, and bounded.
    assert redis_client.xlen(names.run_logs_stream("r1")) <= 110
