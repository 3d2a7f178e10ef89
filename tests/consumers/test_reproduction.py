"""A reproduction compares its weights and inputs with the original's, read from the log."""

from __future__ import annotations

import redis

from consumers.reproduction import compare, reproduction
from events import (
    Difference,
    EventLog,
    Provenance,
    Reproduction,
    TrainingCompleted,
    TrainingCompletedPayload,
    TrainingMetrics,
    TrainingRequested,
)
from tests.harness import tiny_spec

VERSIONS = {"python": "3.11.9", "torch": "2.3.0", "trainledger": "1.2.3"}
CPU = Provenance(model_sha256="a" * 64, device="cpu", threads=2, versions=VERSIONS)
METRICS = TrainingMetrics(steps=3, tokens=300, seconds=1.0, tokens_per_second=300.0)


def test_the_same_weights_on_cpu_with_the_same_inputs_are_identical() -> None:
    assert compare("orig", CPU, CPU) == Reproduction(of="orig", identical=True, differences=[])


def test_other_weights_are_not_identical_and_the_inputs_that_differed_are_named() -> None:
    newer = {**VERSIONS, "torch": "2.4.0", "tokenizers": "0.19.1"}
    mine = CPU.model_copy(update={"model_sha256": "b" * 64, "versions": newer, "threads": 1})
    assert compare("orig", CPU, mine) == Reproduction(
        of="orig",
        identical=False,
        differences=[
            Difference(name="threads", original="2", reproduction="1"),
            Difference(name="tokenizers", original=None, reproduction="0.19.1"),
            Difference(name="torch", original="2.3.0", reproduction="2.4.0"),
        ],
    )


def test_off_cpu_the_weights_are_not_judged_but_the_device_is_named() -> None:
    on_gpu = CPU.model_copy(update={"device": "cuda"})
    assert compare("orig", on_gpu, CPU) == Reproduction(
        of="orig",
        identical=None,
        differences=[Difference(name="device", original="cuda", reproduction="cpu")],
    )
    assert compare("orig", on_gpu, on_gpu).identical is None


def test_an_original_without_provenance_cannot_be_compared() -> None:
    assert compare("orig", None, CPU) == Reproduction(of="orig")


def _requested(run_id: str, reproduces: str | None = None) -> TrainingRequested:
    spec = tiny_spec("c" * 64)
    return TrainingRequested(correlation_id=run_id, payload=spec, reproduces=reproduces)


def _completed(log: EventLog, run_id: str, provenance: Provenance | None) -> None:
    payload = TrainingCompletedPayload(node_id="n", metrics=METRICS, provenance=provenance)
    log.append(TrainingCompleted(correlation_id=run_id, payload=payload))


def test_the_original_is_read_from_its_completion_in_the_log(redis_client: redis.Redis) -> None:
    log = EventLog(redis_client)
    log.append(_requested("orig"))
    _completed(log, "orig", CPU)
    log.append(_requested("old"))
    _completed(log, "old", None)  # completed before provenance was recorded

    assert reproduction(log, _requested("plain"), CPU) is None
    assert reproduction(log, _requested("new", "orig"), CPU) == compare("orig", CPU, CPU)
    assert reproduction(log, _requested("new", "old"), CPU) == Reproduction(of="old")
    assert reproduction(log, _requested("new", "unknown"), CPU) == Reproduction(of="unknown")
