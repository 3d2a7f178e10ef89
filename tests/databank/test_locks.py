"""Leases and their remover: a lease never guards a lock file that was removed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from databank.client.locks import exclusive_if_free, shared_lease
from tests.databank.flocks import flock_waiters
from tests.waiting import wait_until


def test_a_remover_waits_for_no_one_and_skips_what_is_leased(tmp_path: Path) -> None:
    path = tmp_path / "entry.use"
    with shared_lease(path), shared_lease(path), exclusive_if_free(path) as won:
        assert not won
    with exclusive_if_free(path) as won:
        assert won


def test_a_lease_won_on_a_removed_lock_file_is_taken_on_its_replacement(tmp_path: Path) -> None:
    path = tmp_path / "entry.use"
    leased, done = threading.Event(), threading.Event()

    def lease() -> None:
        with shared_lease(path):
            leased.set()
            assert done.wait(timeout=30)

    with ThreadPoolExecutor(max_workers=1) as pool:
        with exclusive_if_free(path) as won:
            assert won
            holder = pool.submit(lease)
            wait_until(lambda: flock_waiters(path) == 1, what="the lease to wait")
            path.unlink()  # as an evictor does, before letting go
        assert leased.wait(timeout=30)
        try:
            with exclusive_if_free(path) as won:
                assert not won  # the lease is on the file the path names now
        finally:
            done.set()
        holder.result(timeout=30)
    with exclusive_if_free(path) as won:
        assert won
