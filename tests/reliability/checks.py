"""After the chaos: let the system settle (conditions with deadlines), then check what must
hold, and tell it in one table."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import redis
from rich.console import Console
from rich.table import Table

from databank import DataBankClient, DataBankError
from events import (
    ArtifactPointerSet,
    ArtifactUploaded,
    ArtifactUploadFailed,
    EventLog,
    TokenizerCompleted,
    TokenizerFailed,
    TrainingCancelled,
    TrainingCompleted,
    TrainingFailed,
    dead_letter_streams,
    group_stats,
    names,
)
from events.replies import text
from projections import rebuild_read_model
from tests.projections.factories import SIGNING_KEYS
from tests.reliability.driver import Accepted, Tally
from tests.reliability.plan import Plan
from tests.reliability.system import System

FINAL = frozenset({"completed", "failed", "cancelled"})
TERMINAL = (
    ArtifactPointerSet, TrainingFailed, TrainingCancelled, ArtifactUploadFailed, TokenizerFailed,
)  # fmt: skip
"""The events that end a run or a tokenizer: exactly one of them each."""


@dataclass
class Report:
    """The outcome of a chaos run."""

    seed: int
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    kills: int = 0
    engine_restarts: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    duplicate_pointers: int = 0
    drift: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def table(self) -> Table:
        """The one table a run prints."""
        table = Table("measure", "value", title=f"chaos run, seed {self.seed}")
        faults = ", ".join(f"{kind} {count}" for kind, count in sorted(self.faults.items()))
        for name, value in (
            ("runs submitted", self.submitted),
            ("completed", self.completed),
            ("failed", self.failed),
            ("lost", self.lost),
            ("kills (SIGKILL)", self.kills),
            ("engine restarts", self.engine_restarts),
            ("Data Bank faults by kind (requests)", faults or "none"),
            ("duplicate pointers", self.duplicate_pointers),
            ("drift (rebuild --verify)", self.drift),
            ("problems", len(self.problems)),
            ("seconds", f"{self.seconds:.0f}"),
            ("seed", self.seed),
        ):
            table.add_row(name, str(value))
        return table

    def print(self, console: Console) -> None:
        """The table, then each problem on its own line."""
        console.print(self.table())
        for problem in self.problems:
            console.print(f"[red]problem:[/red] {problem}")


def until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll `condition` every half second until true (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


class Checker:
    """Settle and check one chaos run."""

    def __init__(self, system: System, plan: Plan, tally: Tally, client: redis.Redis) -> None:
        self.system = system
        self.plan = plan
        self.tally = tally
        self.client = client
        self.log = EventLog(client)
        self.report = Report(plan.seed, submitted=len(tally.accepted))
        self.report.problems.extend(tally.problems)
        self._http = httpx.Client(base_url=system.api_url, timeout=30)

    def run(self) -> Report:
        """Everything the issue asks of a chaos run, in the report."""
        report, tally = self.report, self.tally
        report.kills = sum(tally.kills.values())
        report.engine_restarts = tally.engine_restarts
        self._settle()
        report.faults = dict(self.system.faults.applied)  # some are met while settling
        self.system.faults.reset()  # the checks' own downloads meet none
        for accepted in tally.accepted:
            self._check_subject(accepted)
        self._check_groups()
        verified = rebuild_read_model(self.client, SIGNING_KEYS, verify=True).drift
        report.drift = len(verified.missing) + len(verified.extra) + len(verified.different)
        if report.drift:
            report.problems.append(f"read model drifted: {verified}")
        self._check_secrets()
        report.problems.extend(f"supervisor: {error}" for error in self.system.watch_errors)
        self._http.close()
        return report

    # -- settling ----------------------------------------------------------------------------

    def _status(self, accepted: Accepted) -> str | None:
        path = f"/{accepted.subject}s/{accepted.id}"
        try:
            answer = self._http.get(path)
        except httpx.TransportError:
            return None
        if answer.status_code != 200:
            return None
        status = answer.json().get("status")
        return status if isinstance(status, str) else None

    def _settle(self) -> None:
        open_ = list(self.tally.accepted)

        def all_final() -> bool:
            open_[:] = [subject for subject in open_ if self._status(subject) not in FINAL]
            return not open_

        if not until(all_final, self.plan.scale.settle_s):
            self.report.lost = len(open_)
            self.report.problems.extend(
                f"{subject.subject} {subject.id} not final after the settle time "
                f"(status {self._status(subject)})"
                for subject in open_
            )
        if not until(self._quiet, 120):
            self.report.problems.append("consumer groups still behind after 120 s")

    def _groups(self) -> list[tuple[str, str]]:
        return [
            (stream, text(group["name"]))
            for stream in names.ALL_STREAMS
            if self.client.exists(stream)
            for group in self.client.xinfo_groups(stream)
        ]

    def _quiet(self) -> bool:
        stats = [group_stats(self.client, stream, group) for stream, group in self._groups()]
        return all(stat.pending == 0 and stat.lag == 0 for stat in stats)

    # -- checks ------------------------------------------------------------------------------

    def _check_subject(self, accepted: Accepted) -> None:
        report, label = self.report, f"{accepted.subject} {accepted.id}"
        command = self.client.xrange(names.TRAINING_STREAM, accepted.entry_id, accepted.entry_id)
        if not command:
            report.problems.append(f"{label}: its command {accepted.entry_id} is not in the log")
        events = [entry.event() for entry in self.log.read_correlation(accepted.id)]
        ends = [event.type for event in events if isinstance(event, TERMINAL)]
        if len(ends) != 1:
            report.problems.append(f"{label}: {len(ends)} terminal events {ends}")
        pointers = [event for event in events if isinstance(event, ArtifactPointerSet)]
        report.duplicate_pointers += max(0, len(pointers) - 1)
        trained = any(isinstance(event, TrainingCompleted | TokenizerCompleted) for event in events)
        status = self._status(accepted)
        if status == "completed":
            report.completed += 1
        elif status in FINAL:
            report.failed += 1
        if not trained:
            return
        if len(pointers) != 1 or status != "completed":
            failure = [e for e in events if isinstance(e, ArtifactUploadFailed | TrainingFailed)]
            report.problems.append(
                f"{label} finished training but has {len(pointers)} pointers, status {status}"
                f" {failure[-1].payload if failure else ''}"
            )
            return
        uploaded = [event for event in events if isinstance(event, ArtifactUploaded)]
        self._check_file(label, pointers[0].payload.pointer.file_id, uploaded[-1].payload.sha256)

    def _check_file(self, label: str, file_id: str, sha256: str) -> None:
        target = self.system.root / "check" / file_id
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with DataBankClient(self.system.bank_url, self.system.bank_key) as bank:
                bank.download_to(file_id, target)
        except DataBankError as error:
            self.report.problems.append(f"{label}: its file {file_id} is not in Data Bank: {error}")
            return
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        if digest != sha256:
            self.report.problems.append(f"{label}: {file_id} has sha256 {digest}, not {sha256}")

    def _check_groups(self) -> None:
        for stream, group in self._groups():
            stats = group_stats(self.client, stream, group)
            if stats.pending:
                self.report.problems.append(f"{stream} {group}: {stats.pending} pending")
        for stream in dead_letter_streams(self.client):
            if depth := int(self.client.xlen(stream)):
                self.report.problems.append(f"{stream}: {depth} dead letters (none poisoned)")

    def _check_secrets(self) -> None:
        for path in self.system.log_files():
            self._scan(str(path), path.read_text(errors="replace") if path.exists() else "")
        for body in self.tally.error_bodies:
            self._scan("an error body", body)

    def _scan(self, where: str, content: str) -> None:
        for name, secret in (
            ("Data Bank key", self.system.bank_key),
            ("API key", self.system.api_key),
        ):
            if secret in content:
                self.report.problems.append(f"the {name} appears in {where}")
