"""`Generator` on the tiny model: batches that change nothing, their bounds, cancellation,
closing, failures, and the in-memory LRU with single-flight loads."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from inference import GenerateRequest, Generator, Loaded
from inference.batching import Batcher, ClosedError, Job
from inference.completion import Completion
from inference.decoding import Row
from inference.generation import Running
from inference.loading import LoadError, ModelCache, load_model

PATIENT = 60.0
"""A batch wait no test reaches: batches form only from tickets handed in."""


@pytest.fixture
def patient() -> Iterator[Generator]:
    """A generator whose forming batches wait for every ticket out."""
    made = Generator(max_models=2, batch_wait_s=PATIENT)
    yield made
    made.close()


def ask(prompt: str, tokens: int, **options: object) -> GenerateRequest:
    return GenerateRequest.model_validate(
        {"run_id": "r", "prompt": prompt, "max_new_tokens": tokens, **options}
    )


REQUESTS = [
    ask("The quick", 10),
    ask("A", 25, temperature=0.9, seed=7, num_return_sequences=3),
    ask(" ".join(["the river"] * 10), 20),
    ask("x y z", 5, temperature=1.5, seed=3, top_k=5, top_p=0.8),
    ask("The", 12, stop=["n", "xyz"]),
]


def together(generator: Generator, loaded: Loaded, requests: list[GenerateRequest]) -> list[object]:
    """`requests` submitted as one batch (every ticket taken before the first submits)."""
    tickets = [generator.ticket() for _ in requests]
    running = [
        generator.submit(loaded, request, ticket=ticket)
        for request, ticket in zip(requests, tickets, strict=True)
    ]
    return [run.done.result() for run in running]


def test_a_batch_answers_exactly_as_requests_alone(patient: Generator, model_dir: Path) -> None:
    loaded = patient.load(model_dir)
    alone = [patient.generate(loaded, request) for request in REQUESTS]
    assert patient.stats().batch_rows == {1: 4, 3: 1}
    batched = together(patient, loaded, REQUESTS)
    assert batched == alone
    assert patient.stats().batch_rows == {1: 4, 3: 1, 7: 1}
    assert patient.stats().tokens_generated == 2 * sum(
        sum(generation.generated_tokens) for generation in alone
    )


def test_batches_hold_at_most_max_batch_rows(model_dir: Path) -> None:
    generator = Generator(max_batch=4, batch_wait_s=PATIENT)
    try:
        loaded = generator.load(model_dir)
        three = ask("A", 3, temperature=1.0, num_return_sequences=3)
        one = ask("B", 3)
        together(generator, loaded, [three, one, three, one])
        assert generator.stats().batch_rows == {4: 2}
    finally:
        generator.close()


def test_each_batch_holds_one_model(patient: Generator, model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    first, second = patient.load(model_dir), patient.load(copy)
    tickets = [patient.ticket() for _ in range(3)]
    running = [
        patient.submit(loaded, ask("The", 3), ticket=ticket)
        for loaded, ticket in zip((first, second, first), tickets, strict=True)
    ]
    answers = [run.done.result() for run in running]
    assert answers[0] == answers[1] == answers[2]
    assert patient.stats().batch_rows == {2: 1, 1: 1}


def test_a_ticket_handed_in_without_a_job_releases_the_batch(
    patient: Generator, model_dir: Path
) -> None:
    loaded = patient.load(model_dir)
    waiting = patient.ticket()
    with patient.ticket():  # a request that failed before submitting
        running = patient.submit(loaded, ask("The", 3), ticket=waiting)
    assert running.done.result().generated_tokens == [3]


def test_a_listener_hears_the_text_and_can_cancel(patient: Generator, model_dir: Path) -> None:
    loaded = patient.load(model_dir)
    heard: list[tuple[int, str]] = []
    handle: list[Running] = []

    def listen(index: int, text: str) -> None:  # on the decoding thread
        heard.append((index, text))
        handle[0].cancel()

    with patient.ticket() as ticket:  # the batch waits until `handle` is filled
        handle.append(patient.submit(loaded, ask("The", 25), listener=listen))
    generation = handle[0].done.result()
    assert ticket.out is False
    assert generation.finish_reasons == ["cancelled"]
    assert 0 < generation.generated_tokens[0] < 25
    assert "".join(text for _, text in heard) == generation.completions[0]
    assert {index for index, _ in heard} == {0}


def test_rows_stop_at_end_of_text(reference: Loaded) -> None:
    row = Row(prompt=[5], budget=5, completion=Completion(reference.tokenizer))
    logits = torch.full((300,), -10.0)
    logits[reference.end_of_text] = 10.0
    assert row.step(logits, reference.end_of_text) == reference.end_of_text
    assert (row.finish, row.generated) == ("eos", 0)
    assert row.step(torch.zeros(300), reference.end_of_text) == reference.end_of_text


def test_closing_fails_what_is_queued(model_dir: Path) -> None:
    generator = Generator(batch_wait_s=PATIENT)
    loaded = generator.load(model_dir)
    generator.ticket()  # never handed in: the batch waits for it
    running = generator.submit(loaded, ask("The", 3))
    generator.close()
    with pytest.raises(ClosedError):
        running.done.result()
    with pytest.raises(ClosedError):
        generator.submit(loaded, ask("The", 3))


def test_a_failing_batch_fails_its_jobs(model_dir: Path, reference: Loaded) -> None:
    def broken(loaded: Loaded, rows: list[Row]) -> None:
        raise RuntimeError("out of memory")

    batcher = Batcher(broken)
    job = Job(reference, [Row(prompt=[1], budget=1, completion=Completion(reference.tokenizer))])
    batcher.submit(job)
    with pytest.raises(RuntimeError, match="out of memory"):
        job.done.result()
    generator = Generator()
    generator.batcher.run = broken
    try:
        with pytest.raises(RuntimeError, match="out of memory"):
            generator.generate(reference, ask("The", 2))
    finally:
        generator.close()
        batcher.close()


def test_the_model_lru_is_bounded(model_dir: Path, tmp_path: Path) -> None:
    generator = Generator(max_models=1)
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    first = generator.load(model_dir)
    assert generator.load(model_dir) is first
    generator.load(copy)
    assert generator.load(model_dir) is not first
    assert (generator.max_models, generator.stats().loads) == (1, 3)
    generator.close()


def test_loads_are_single_flight_and_failures_are_not_shared(model_dir: Path) -> None:
    cache = ModelCache(2)
    calls: list[int] = []
    release = threading.Event()

    def slow() -> Loaded:
        calls.append(1)
        release.wait(60)
        return load_model(model_dir)

    results: list[tuple[Loaded, bool]] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", slow))) for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert sorted(hit for _, hit in results) == [False, True, True, True, True]
    assert len({id(loaded) for loaded, _ in results}) == 1

    def failing() -> Loaded:
        raise LoadError("broken")

    with pytest.raises(LoadError):
        cache.get("other", failing)
    assert cache.get("other", lambda: load_model(model_dir))[1] is False


def test_a_directory_without_a_model_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError):
        load_model(tmp_path)


def test_a_tokenizer_without_end_of_text_is_a_load_error(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    config = copy / "tokenizer_config.json"
    settings = json.loads(config.read_text())
    for name in ("eos_token", "bos_token", "pad_token", "unk_token"):
        settings.pop(name, None)
    config.write_text(json.dumps(settings))
    with pytest.raises(LoadError, match="no end-of-text token"):
        load_model(copy)


def test_a_batch_waits_for_tickets_no_longer_than_its_wait(model_dir: Path) -> None:
    impatient = Generator(batch_wait_s=0)
    try:
        loaded = impatient.load(model_dir)
        with impatient.ticket():  # never brings a job; the batch goes without it
            assert impatient.generate(loaded, ask("The", 3)).generated_tokens == [3]
        assert impatient.stats().batch_rows == {1: 1}
    finally:
        impatient.close()


def test_a_batch_takes_jobs_up_to_its_row_bound(reference: Loaded) -> None:
    gate, busy = threading.Event(), threading.Event()
    sizes: list[int] = []

    def run(loaded: Loaded, rows: list[Row]) -> None:
        sizes.append(len(rows))
        busy.set()
        gate.wait(10)

    def job() -> Job:
        return Job(
            reference, [Row(prompt=[1], budget=1, completion=Completion(reference.tokenizer))]
        )

    batcher = Batcher(run, max_rows=2, wait_s=0)
    first = job()
    batcher.submit(first)
    assert busy.wait(10)  # the decoding thread holds the first job while three more queue
    rest = [job() for _ in range(3)]
    for queued in rest:
        batcher.submit(queued)
    gate.set()
    for done in (first, *rest):
        done.done.result(10)
    with batcher.ticket() as ticket:
        batcher.handed_in(ticket)  # handed in early, and again as the block ends: counted once
    batcher.close()
    assert sizes == [1, 2, 1]
