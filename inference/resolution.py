"""Which run and artifact a request means: `model` (`name@alias`) or `run_id` -> pointer.

Resolved afresh on every request (an alias moved is served by the next request). The hot path
is one read (or two, through an alias); only a missing pointer reads the run's status, to say
why: unknown (404 `NOT_FOUND`), not yet (404 `NO_ARTIFACT_YET` while queued, running, trained
or uploading), or never (409 `RUN_NOT_SERVABLE`: failed, cancelled, deleted, revoked).

The pointer's signature is verified again here, though the projector verified it: anyone who
can write the engine can write the read model too. A pointer this deployment's workers did
not sign is 502 with the refusal's code (`POINTER_UNSIGNED`, `POINTER_KEY_UNKNOWN`,
`POINTER_SIGNATURE_INVALID`), and its file is never fetched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from inference.errors import (
    NoArtifactYetError,
    NotFoundError,
    NotServableError,
    PointerRefusedError,
)
from inference.requests import ModelRequest
from projections import PointerRefused, ReadModel, SignedArtifact, SigningKeys, warn_refused

log = logging.getLogger(__name__)

STILL_COMING = frozenset({"queued", "running", "trained", "uploading"})
"""Statuses of a run that may still get its artifact."""


@dataclass(frozen=True)
class Target:
    """The run a request is served by, and its artifact."""

    run_id: str
    file_id: str
    model: str | None
    """The `name@alias` asked for, if any."""


def resolve(read_model: ReadModel, request: ModelRequest, keys: SigningKeys) -> Target:
    """The run and artifact `request` names now, or the error that says why there is none."""
    run_id = request.run_id
    if request.model is not None:
        name, alias = request.model.split("@")
        run_id = read_model.alias_run(name, alias)
        if run_id is None:
            raise NotFoundError(f"model {request.model!r} is unknown (no such alias)")
    assert run_id is not None  # the request names a run or a model
    try:
        signed = read_model.signed_run_artifact(run_id) or _missing(read_model, run_id, request)
        file_id = signed.verified(keys).file_id
    except PointerRefused as refused:
        warn_refused(log, refused, "refused", "inference", "run", run_id)
        raise PointerRefusedError(refused.code, f"{refused.message}: not served") from None
    return Target(run_id=run_id, file_id=file_id, model=request.model)


def _missing(read_model: ReadModel, run_id: str, request: ModelRequest) -> SignedArtifact:
    """The pointer after all (it landed between two reads), or why there is none."""
    model = request.model
    via = f" (model {model!r})" if model is not None else ""
    status = read_model.run_status(run_id)
    if status is None:
        raise NotFoundError(f"run {run_id!r}{via} is unknown")
    if status.status in STILL_COMING:
        raise NoArtifactYetError(f"run {run_id!r}{via} is {status.status}: no artifact yet")
    if status.status == "completed":
        signed = read_model.signed_run_artifact(run_id)
        if signed is not None:
            return signed
    reason = status.message or "no artifact"
    raise NotServableError(f"run {run_id!r}{via} is {status.status} ({reason})")
