"""Drive a plan against the running system: submissions through the API (retried on 503 and
broken connections with the same `Idempotency-Key`) in one thread, the chaos in another."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from events import TokenizerParams, TokenizerSpec
from tests.databank.faults import Fault
from tests.harness import tiny_spec
from tests.reliability.plan import Burst, Chaos, Kill, Outage, Plan, RestartEngine, Submit
from tests.reliability.system import System

RETRIED = frozenset({502, 503, 504})
"""Answers a client retries with the same key (the engine or the API is restarting)."""


@dataclass(frozen=True)
class Accepted:
    """A command the API accepted: the run or tokenizer and its `stream:training` entry."""

    subject: str
    """`run` or `tokenizer`."""
    id: str
    entry_id: str


@dataclass
class Tally:
    """What the driver did and saw."""

    accepted: list[Accepted] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)
    engine_restarts: int = 0
    outages: list[float] = field(default_factory=list)
    retried: int = 0
    duplicates_sent: int = 0
    problems: list[str] = field(default_factory=list)
    error_bodies: list[str] = field(default_factory=list)


class Driver:
    """Carry out `plan` on `system`, from the moment `run` is called."""

    def __init__(self, system: System, plan: Plan, corpus_id: str) -> None:
        self.system = system
        self.plan = plan
        self.corpus_id = corpus_id
        self.tally = Tally()
        self._lock = threading.Lock()
        self._outage_began = threading.Event()
        self._http = httpx.Client(
            base_url=system.api_url,
            timeout=30,
            headers={"X-API-Key": system.api_key, "Content-Type": "application/json"},
        )

    def run(self) -> Tally:
        """Submit and wreak havoc until both timelines are done; the tally."""
        start = time.monotonic()
        threads = [
            threading.Thread(target=self._submissions, args=(start,), name="submit"),
            threading.Thread(target=self._chaos, args=(start,), name="chaos"),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._http.close()
        return self.tally

    @staticmethod
    def _until(start: float, at: float) -> None:
        """Pace a timeline: wait until `at` seconds after `start`."""
        time.sleep(max(0.0, start + at - time.monotonic()))

    def _note(self, problem: str) -> None:
        with self._lock:
            self.tally.problems.append(problem)

    # -- submissions -------------------------------------------------------------------------

    def _submissions(self, start: float) -> None:
        for submit in self.plan.submissions:
            self._until(start, submit.at)
            if submit.after_outage and not self._outage_began.wait(600):
                self._note(f"submission {submit.index}: the outage never began")
                continue
            try:
                self._submit(submit)
            except (RuntimeError, httpx.HTTPError) as error:
                self._note(f"submission {submit.index}: {error}")

    def _submit(self, submit: Submit) -> None:
        key = f"chaos-{self.plan.seed}-{submit.index}"
        if submit.tokenizer:
            path, subject, id_field = "/tokenizers/train", "tokenizer", "tokenizer_id"
            params = TokenizerParams(vocab_size=300 + submit.index, min_frequency=2)
            body = TokenizerSpec(corpus_file_id=self.corpus_id, params=params).model_dump_json()
        else:
            path, subject, id_field = "/runs/train", "run", "run_id"
            spec = tiny_spec(self.corpus_id, max_steps=3 + submit.index % 4, seed=submit.index)
            body = spec.model_dump_json()
        first = self._post(path, body, key)
        accepted = Accepted(subject, str(first[id_field]), str(first["entry_id"]))
        with self._lock:
            self.tally.accepted.append(accepted)
        if submit.twice:
            again = self._post(path, body, key)
            with self._lock:
                self.tally.duplicates_sent += 1
            if again != first:
                self._note(f"{key} sent twice answered {first} then {again}")

    def _post(self, path: str, body: str, key: str) -> dict[str, object]:
        """POST until accepted: 503s and broken connections are retried with the same key."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                answer = self._http.post(path, content=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code == 202:
                accepted: dict[str, object] = answer.json()
                return accepted
            if answer is not None:
                with self._lock:
                    self.tally.error_bodies.append(answer.text)
                if answer.status_code not in RETRIED:
                    raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text}")
            with self._lock:
                self.tally.retried += 1
            time.sleep(0.25)
        raise RuntimeError(f"{path} with key {key} not accepted within 120 s")

    # -- chaos -------------------------------------------------------------------------------

    def _chaos(self, start: float) -> None:
        for action in self.plan.chaos:
            self._until(start, action.at)
            self._do(action)

    def _do(self, action: Chaos) -> None:
        system = self.system
        if isinstance(action, Kill):
            deadline = time.monotonic() + 60  # a child between restarts is killed once it runs
            while not system.kill(action.target):
                if time.monotonic() > deadline:
                    self._note(f"{action.target} was not running for 60 s")
                    return
                time.sleep(0.1)
            self.tally.kills[action.target] += 1
        elif isinstance(action, RestartEngine):
            system.engine.restart()
            self.tally.engine_restarts += 1
        elif isinstance(action, Outage):
            system.faults.outage(action.seconds)
            self._outage_began.set()
            self._hold_until_met(action.seconds)
            self.tally.outages.append(action.seconds)
        else:
            system.faults.add(_fault(action))

    def _hold_until_met(self, seconds: float, cap: float = 120.0) -> None:
        """Keep Data Bank down until some request met the outage (at most `cap` seconds), then
        for `seconds` more: how long a run takes to reach its upload depends on the machine's
        load, and an outage nothing met would test nothing."""
        faults = self.system.faults
        deadline = time.monotonic() + cap
        while faults.applied["outage"] == 0 and time.monotonic() < deadline:
            faults.outage(seconds)
            time.sleep(0.2)


def _fault(burst: Burst) -> Fault:
    if burst.kind == "5xx":
        body = b'{"code": "INTERNAL_ERROR", "message": "injected"}'
        return Fault(
            kind="answer", method=burst.method, status=int(burst.detail), body=body,
            times=burst.times,
        )  # fmt: skip
    if burst.kind == "cut":
        return Fault(
            kind="cut", method=burst.method, after_bytes=int(burst.detail), times=burst.times
        )
    return Fault(kind="delay", method=burst.method, delay_s=burst.detail, times=burst.times)
