"""`CancelWatch`: has a cancel been requested for this run? Asked of the log at a bounded rate.

The trainer asks before every step; one read of the log per step would cost a round trip per
step, so the answer is refreshed at most every `interval` seconds (a cancel then takes effect
within about `interval` plus one step). Once seen, a cancel stays seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from consumers.history import History
from events import EventLog


class CancelWatch:
    """Watches the log of one run for `training.cancel_requested`."""

    def __init__(
        self,
        log: EventLog,
        run_id: str,
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._run_id = run_id
        self._interval = interval
        self._clock = clock
        self._next = clock() + interval
        self._seen = False

    def requested(self) -> bool:
        """True once the log holds a cancel request for the run (checked now, if due)."""
        if self._seen:
            return True
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self._interval
        self._seen = History.read(self._log, self._run_id).cancel_requested
        return self._seen
