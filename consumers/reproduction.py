"""How a reproduction compares with the run it reproduces, from the log alone.

Every `training.completed` carries its run's `Provenance` (the sha256 of the weights, the
device and torch's threads, the library versions), so the stage that completes a reproduction reads the
original's completion from the log and compares: no download of the original's artifact.
The comparison goes into the reproduction's own `training.completed`, a fact like any other.
"""

from __future__ import annotations

from consumers.history import History
from events import (
    Difference,
    EventLog,
    Provenance,
    Reproduction,
    TrainingCompleted,
    TrainingRequested,
)


def reproduction(log: EventLog, cause: TrainingRequested, mine: Provenance) -> Reproduction | None:
    """How the run of `cause` compares with the run it reproduces (None: it reproduces none)."""
    if cause.reproduces is None:
        return None
    completion = History.read(log, cause.reproduces).completion("run")
    original = completion.payload.provenance if isinstance(completion, TrainingCompleted) else None
    return compare(cause.reproduces, original, mine)


def compare(of: str, original: Provenance | None, mine: Provenance) -> Reproduction:
    """`mine` against the original's provenance (None: not recorded, nothing to compare)."""
    if original is None:
        return Reproduction(of=of)
    differences = [
        _differs("device", original.device, mine.device),
        _differs("threads", str(original.threads), str(mine.threads)),
    ]
    names = sorted(original.versions.keys() | mine.versions.keys())
    differences += [
        _differs(name, original.versions.get(name), mine.versions.get(name)) for name in names
    ]
    on_cpu = original.device == mine.device == "cpu"
    return Reproduction(
        of=of,
        identical=original.model_sha256 == mine.model_sha256 if on_cpu else None,
        differences=[difference for difference in differences if difference is not None],
    )


def _differs(name: str, original: str | None, mine: str | None) -> Difference | None:
    return None if original == mine else Difference(name=name, original=original, reproduction=mine)
