"""The retention stage: a deleted run's Data Bank file goes once nothing else points to it.

Files are content-addressed, so two runs (or a run and a tokenizer) may share one file id: the
same spec trained twice gives the same bytes. Before deleting, the handler waits until the
projector has applied every pointer event appended so far (`stream:pointer`, and this
deletion's own stream up to its entry), then looks for another pointer key holding the same
file id. Two runs sharing a file and deleted together cannot both keep it: whichever handler
runs last sees the other's deletion applied. A deletion with nothing to delete (a run that
never had an artifact, a file already gone) is done. Left open: a pointer set in the instant
between the check and the delete would point at a deleted file; the upload that sets it
uploads the same bytes again first, so `POST /runs/{id}/upload` after a failed read mends it.

The file a deletion frees is the one the run's last pointer signed under the worker's keys
names (`History.verified`): a forged pointer appended before a DELETE would otherwise pick
any Data Bank file, a corpus say, for deletion.

Scanning the pointer keys costs a few round trips per thousand runs; a reverse index (file id
to pointers) in the read model would make it constant when deletions of large stores matter.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Protocol

import redis

from consumers.history import History
from databank import NotFound
from events import (
    ArtifactPointerRevoked,
    Delivery,
    EventLog,
    Handlers,
    SigningKeys,
    entries,
    names,
    text,
)

log = logging.getLogger(__name__)

_RECENT_LETTERS = 1000
"""Dead letters looked at: the entries a deletion waits on are the newest ones."""


class Deletes(Protocol):
    """What the stage needs from Data Bank (`DataBankClient`)."""

    def delete(self, file_id: str) -> None: ...


class ProjectorBehindError(RuntimeError):
    """The read model did not catch up in time; the deletion is retried on redelivery."""


class RetentionStage:
    """Handles deletions (`artifact.pointer_revoked` with `deleted`)."""

    def __init__(
        self,
        client: redis.Redis,
        databank: Deletes,
        keys: SigningKeys,
        *,
        catch_up_s: float = 10.0,
    ) -> None:
        self._client = client
        self._log = EventLog(client)
        self._databank = databank
        self._keys = keys
        self._catch_up_s = catch_up_s

    def register(self, handlers: Handlers) -> Handlers:
        """Add this stage's handler to `handlers`."""
        return handlers.on(ArtifactPointerRevoked, self.handle)

    def handle(self, event: ArtifactPointerRevoked, delivery: Delivery) -> None:
        """Delete the run's file unless another run or tokenizer still points to it."""
        if not event.payload.deleted:
            return
        run_id = event.correlation_id
        file_id = History.read(self._log, run_id).verified(self._keys).last_file_id()
        if file_id is None:
            return
        self._wait_for_projector(delivery)
        if self._pointed_to(file_id, names.run_artifact_key(run_id)):
            _info("file kept: another pointer holds it", "file_kept", run_id)
            return
        with contextlib.suppress(NotFound):  # gone already: what a deletion wants
            self._databank.delete(file_id)
        _info("file deleted from Data Bank", "file_deleted", run_id)

    def _wait_for_projector(self, delivery: Delivery) -> None:
        wanted = {
            delivery.stream: delivery.entry_id,
            names.POINTER_STREAM: self._last_entry(names.POINTER_STREAM),
        }
        deadline = time.monotonic() + self._catch_up_s
        while not all(self._applied(stream, entry) for stream, entry in wanted.items()):
            if time.monotonic() > deadline or delivery.stopping.wait(0.05):
                raise ProjectorBehindError("the read model is behind the deletion; retrying")

    def _last_entry(self, stream: str) -> str:
        last = self._client.xrevrange(stream, count=1)
        return text(last[0][0]) if last else "0-0"

    def _applied(self, stream: str, entry_id: str) -> bool:
        """The projector is done with every entry up to `entry_id`: none is pending, and each
        is behind its checkpoint or was given up on (a pointer it refused is dead-lettered
        and never moves the checkpoint; without this a forged pointer appended last would
        stall every deletion until a genuine pointer came)."""
        key = names.checkpoint_key(names.PROJECTOR_GROUP, stream)
        checkpoint = text(self._client.get(key) or b"0-0")
        if _position(checkpoint) < _position(entry_id):
            beyond = self._client.xrange(stream, f"({checkpoint}", entry_id)
            if not {entry for entry, _ in entries(beyond)} <= self._given_up(stream):
                return False
        held = self._client.xpending_range(stream, names.PROJECTOR_GROUP, "-", entry_id, 1)
        return not held

    def _given_up(self, stream: str) -> set[str]:
        """The ids of the newest entries of `stream` the projector dead-lettered."""
        letters = self._client.xrevrange(
            names.dlq_stream(stream, names.PROJECTOR_GROUP), count=_RECENT_LETTERS
        )
        return {text(fields.get(b"original_id", b"")) for _, fields in entries(letters)}

    def _pointed_to(self, file_id: str, own_key: str) -> bool:
        """True when a pointer key other than `own_key` holds `file_id`."""
        patterns = (names.run_artifact_key("*"), names.tokenizer_artifact_key("*"))
        for pattern in patterns:
            keys = self._client.scan_iter(match=pattern, count=1000)
            others = [k for k in keys if text(k) != own_key]
            for start in range(0, len(others), 1000):
                values = self._client.mget(others[start : start + 1000])
                if any(v is not None and text(v) == file_id for v in values):
                    return True
        return False


def _position(entry_id: str) -> tuple[int, int]:
    milliseconds, sequence = entry_id.split("-")
    return int(milliseconds), int(sequence)


def _info(message: str, event: str, run_id: str) -> None:
    log.info(message, extra={"category": "retention", "event": event, "run_id": run_id})
