"""The read model: the projection, its store, the projector, the queries, and the rebuild.

- `projection`: facts, fact groups, the derivation rules, `Record` and `MemoryModel`;
- `store`: the read model's keys in the engine and the apply script that writes them;
- `projector`: the live consumer that applies each event;
- `queries`: `ReadModel` / `AsyncReadModel`, and waiting for a position;
- `rebuild`: replay the log, compare (`drift`) and repair (`repair`) under the lock;
- `trust`: a pointer is taken only once its signature verifies (both of the above ask it).

`SigningKeys`, `PointerRefused` and `warn_refused` come from `events`: the inference service,
which reads through this package, verifies a pointer again when it resolves a run.
"""

from events import PointerRefused, SigningKeys, warn_refused
from projections.drift import Drift
from projections.projection import RULES, Fact, Kind, MemoryModel, Record, derive, project
from projections.projector import PauseTimeoutError, Projector
from projections.queries import (
    AliasView,
    AsyncReadModel,
    ModelView,
    ReadModel,
    RunFilter,
    RunMetrics,
    RunPage,
    RunProgress,
    RunStatus,
    SignedArtifact,
    Status,
    TokenizerPage,
    TokenizerStatus,
    position,
)
from projections.rebuild import RebuildBusyError, RebuildReport, rebuild_read_model, replay
from projections.repair import LockLostError, RebuildError

__all__ = [
    "RULES",
    "AliasView",
    "AsyncReadModel",
    "Drift",
    "Fact",
    "Kind",
    "LockLostError",
    "MemoryModel",
    "ModelView",
    "PauseTimeoutError",
    "PointerRefused",
    "Projector",
    "ReadModel",
    "RebuildBusyError",
    "RebuildError",
    "RebuildReport",
    "Record",
    "RunFilter",
    "RunMetrics",
    "RunPage",
    "RunProgress",
    "RunStatus",
    "SignedArtifact",
    "SigningKeys",
    "Status",
    "TokenizerPage",
    "TokenizerStatus",
    "derive",
    "position",
    "project",
    "rebuild_read_model",
    "replay",
    "warn_refused",
]
