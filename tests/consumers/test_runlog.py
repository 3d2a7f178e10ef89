"""A run's log stream (words and progress numbers, capped) and its file `logs.jsonl`."""

from __future__ import annotations

from pathlib import Path

import redis

from consumers.runlog import LOG_FILE, RecordedLine, RunLog
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


def _recorded(path: Path) -> list[RecordedLine]:
    return [RecordedLine.model_validate_json(line) for line in path.read_text().splitlines()]


def test_with_a_file_every_line_is_also_one_json_object_in_it(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = tmp_path / "logs" / "r1.jsonl"
    lines = RunLog(redis_client, "r1", file=path)
    lines.say("started", "attempt 1")
    lines.progress(
        Progress(step=1, total_steps=2, loss=3.5, tokens_per_second=10.0, eta_seconds=1.0)
    )
    RunLog(redis_client, "r1", file=path).say("started", "attempt 2")  # a later attempt appends

    recorded = _recorded(path)
    assert [(line.kind, line.step) for line in recorded] == [
        ("started", None),
        ("progress", 1),
        ("started", None),
    ]
    assert recorded[0].at <= recorded[1].at <= recorded[2].at
    assert '"eta_seconds"' not in path.read_text().splitlines()[0]  # absent numbers left out
    assert redis_client.xlen(names.run_logs_stream("r1")) == 3


def test_keep_in_links_the_file_so_later_lines_reach_the_directory(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    run_dir = tmp_path / "staging"
    run_dir.mkdir()
    (run_dir / LOG_FILE).write_text("left by an earlier attempt\n")
    lines = RunLog(redis_client, "r1", file=tmp_path / "logs" / "r1.jsonl")
    lines.keep_in(run_dir)  # before any line: the file is made
    lines.say("started", "training started")
    lines.keep_in(run_dir)  # again: still one file under both names
    lines.say("completed", "training completed")

    kept = run_dir / LOG_FILE
    assert kept.stat().st_ino == (tmp_path / "logs" / "r1.jsonl").stat().st_ino
    assert [line.kind for line in _recorded(kept)] == ["started", "completed"]


def test_without_a_file_keep_in_leaves_the_directory_alone(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    lines = RunLog(redis_client, "r1")
    lines.say("started", "training started")
    lines.keep_in(tmp_path)
    assert list(tmp_path.iterdir()) == []
