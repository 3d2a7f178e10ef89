"""What child processes run in the multi-process cache tests (importable under `spawn`)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

from databank import ArtifactFetcher, CorpusFetcher, DataBankClient, RetryPolicy


def fetch(
    url: str, key: str, cache_dir: str, file_id: str, start: Barrier, results: Queue[str]
) -> None:
    """Wait for the other children, fetch, and report the cached path."""
    retry = RetryPolicy(attempts=3, initial_backoff=0.001, max_backoff=0.004, jitter=0.001)
    with DataBankClient(url, key, retry=retry) as client:
        fetcher = CorpusFetcher(client, Path(cache_dir))
        start.wait(timeout=60)
        results.put(str(fetcher.fetch(file_id)))


def hold(
    url: str, key: str, cache_dir: str, file_id: str, held: Queue[str], release: Event
) -> None:
    """Hold an artifact (another process's use of a shared cache) until told to let go."""
    retry = RetryPolicy(attempts=3, initial_backoff=0.001, max_backoff=0.004, jitter=0.001)
    with (
        DataBankClient(url, key, retry=retry) as client,
        ArtifactFetcher(client, Path(cache_dir)).hold(file_id) as directory,
    ):
        held.put(str(directory))
        release.wait(timeout=60)
