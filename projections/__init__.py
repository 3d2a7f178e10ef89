"""The read model: the projector that materializes it, the rebuild, and the typed queries."""

from projections.effects import Fact, Kind, project
from projections.model import RULES, MemoryModel, Record, derive
from projections.projector import PauseTimeoutError, Projector
from projections.queries import (
    AsyncReadModel,
    ReadModel,
    RunPage,
    RunStatus,
    Status,
    TokenizerStatus,
    position,
)
from projections.rebuild import RebuildBusyError, RebuildReport, rebuild, replay
from projections.reconcile import Drift, LockLostError, RebuildError
from projections.resp import GetClient

__all__ = [
    "RULES",
    "AsyncReadModel",
    "Drift",
    "Fact",
    "GetClient",
    "Kind",
    "LockLostError",
    "MemoryModel",
    "PauseTimeoutError",
    "Projector",
    "ReadModel",
    "RebuildBusyError",
    "RebuildError",
    "RebuildReport",
    "Record",
    "RunPage",
    "RunStatus",
    "Status",
    "TokenizerStatus",
    "derive",
    "position",
    "project",
    "rebuild",
    "replay",
]
