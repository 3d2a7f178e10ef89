"""Which events the read model takes: every one, except a pointer whose signature does not
verify under the deployment's keys (`events.signing`). The live projector and the rebuild
ask the same question here, so a replay keeps out exactly what the projector kept out."""

from __future__ import annotations

import logging

from events import ArtifactPointerSet, Event, SigningKeys

log = logging.getLogger(__name__)


def admit(event: Event, keys: SigningKeys) -> None:
    """Return when the read model may take `event`; `PointerRefused` for a pointer whose
    signature is missing or does not verify (logged with its code, never a key)."""
    if not isinstance(event, ArtifactPointerSet):
        return
    refused = event.refusal(keys, log, "projector", "refused")
    if refused is not None:
        raise refused
