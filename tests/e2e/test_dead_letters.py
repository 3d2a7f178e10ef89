"""Issue 14, item 2: a run or tokenizer whose request is dead-lettered ends `failed` with a
message that says so, and `trainledger dlq replay` revives it until it completes.

The cause here is a Data Bank that answers 503 for the corpus for longer than every retry: the
training group redelivers the request until `max_deliveries`, then dead-letters it. Before the
fix the run stayed `running` (and the tokenizer `queued`) for good.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from events import TokenizerSpec, TrainingStarted, names
from tests.databank.faults import Fault
from tests.e2e.conftest import Pipeline
from tests.harness import events_of, tiny_spec
from tests.waiting import wait_until
from trainledger.cli import app


def _wait_completed(pipeline: Pipeline, path: str) -> None:
    wait_until(lambda: pipeline.status(path).get("status") == "completed", timeout=60, what=path)


REPLAY = "`trainledger dlq replay --stream stream:training --group training` tries again"


def test_a_dead_lettered_request_fails_and_a_replay_completes_it(
    pipeline: Pipeline, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = pipeline.bank.put_corpus(tmp_path)
    outage = Fault(kind="answer", path=f"/files/{corpus}", status=503, body=b"{}", times=10_000)
    pipeline.bank.faults.add(outage)
    pipeline.start_worker(
        pipeline.worker_config("node-a", max_deliveries=2, visibility_timeout_ms=300)
    )
    run_id = pipeline.train(tiny_spec(corpus, max_steps=1))
    tokenizer_id = pipeline.train_tokenizer(TokenizerSpec(corpus_file_id=corpus))
    paths = {
        "training.requested": f"/runs/{run_id}",
        "tokenizer.requested": f"/tokenizers/{tokenizer_id}",
    }

    for kind, path in paths.items():
        record = pipeline.wait_final(path)
        assert record["status"] == "failed"
        message = str(record["message"])
        assert message.startswith(
            f"dead-lettered: group training gave up on {kind} after 3 deliveries (last error: "
        )
        assert message.endswith(REPLAY)
        assert record["failed_at"] is not None

    pipeline.bank.faults.reset()  # Data Bank is back
    monkeypatch.setenv("REDIS__URL", redis_url)
    replay = ["dlq", "replay", "--stream", names.TRAINING_STREAM, "--group", names.TRAINING_GROUP]
    replayed = CliRunner().invoke(app, replay)
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 2 entries" in replayed.output

    for path in paths.values():
        _wait_completed(pipeline, path)
        record = pipeline.status(path)
        assert (record["message"], record["failed_at"]) == (None, None)
    starts = events_of(pipeline.log, run_id, TrainingStarted)
    assert [start.payload.attempt for start in starts] == [1, 2, 3]  # the replay started anew
    assert pipeline.api.get(f"/runs/{run_id}/artifact").status_code == 200
