"""Repair writes only while the rebuild holds the lock, and surfaces the engine's refusals."""

from __future__ import annotations

import pytest
import redis

from events import names
from projections import LockLostError, RebuildError, replay
from projections.drift import Comparison, Writes
from projections.repair import Repair
from tests.projections.factories import SIGNING_KEYS
from tests.projections.helpers import project_sample


@pytest.fixture
def projected(redis_client: redis.Redis) -> redis.Redis:
    """Three completed runs and a trained tokenizer, projected live."""
    project_sample(redis_client)
    return redis_client


def test_writes_refuse_once_the_lock_is_lost(projected: redis.Redis) -> None:
    projected.delete(names.run_status_key("r0"))
    model = replay(projected, SIGNING_KEYS).model
    repair = Repair(projected, b"not-the-holder")
    with pytest.raises(LockLostError):
        repair.run(Comparison(projected, model))
    with pytest.raises(LockLostError):
        repair.set_checkpoints({})
    assert not projected.exists(names.run_status_key("r0"))


def test_other_engine_errors_surface(projected: redis.Redis) -> None:
    projected.delete(names.RUN_INDEX)
    projected.set(names.RUN_INDEX, "not a sorted set")
    projected.set(names.PROJECTOR_LOCK, "token")
    repair = Repair(projected, b"token")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        repair.run(Comparison(projected, replay(projected, SIGNING_KEYS).model))
    projected.delete(names.RUN_INDEX)
    with pytest.raises(RebuildError) as raised:  # a script the engine refuses, not the lock
        repair.write(Writes(hashes=[("key", ["odd"])]))
    assert not isinstance(raised.value, LockLostError)
