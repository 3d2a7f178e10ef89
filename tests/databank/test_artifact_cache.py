"""The extracted-artifact cache against a real local Data Bank: bounded by bytes, least recently
used out first, never what is in use (by this process or another), served while Data Bank is
down, and one download however many first holds race for it."""

from __future__ import annotations

import io
import multiprocessing
import os
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from multiprocessing.queues import Queue
from pathlib import Path

import pytest

from databank import ArtifactFetcher, FileDownloader, TransientError
from tests.databank import children
from tests.databank.conftest import KEY, Bank
from tests.databank.flocks import flock_waiters
from tests.harness import serve_bank
from tests.waiting import wait_until

SIZE = 10_000
"""Bytes of every artifact here: the one file it holds."""


def artifact(seed: int) -> bytes:
    """A tar holding `SIZE` bytes of weights, different for every seed."""
    data = seed.to_bytes(8, "big") + os.urandom(SIZE - 8)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("model.safetensors")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def put(bank: Bank, count: int) -> list[str]:
    """Upload `count` distinct artifacts; their file ids."""
    client = bank.client()

    def upload(tar: bytes) -> str:
        return client.upload(lambda: [tar]).file_id

    return [upload(artifact(seed)) for seed in range(count)]


def cached(cache: Path) -> set[str]:
    """The file ids whose directories are in the cache."""
    return {path.name for path in cache.iterdir() if path.is_dir() and len(path.name) == 64}


def downloads(bank: Bank, file_id: str) -> int:
    return len(bank.faults.requests("GET", f"/files/{file_id}"))


def test_the_bound_holds_after_many_fetches(bank: Bank, tmp_path: Path) -> None:
    ids = put(bank, 10)
    fetcher = ArtifactFetcher(bank.client(), tmp_path, max_bytes=3 * SIZE + SIZE // 2)

    for count, file_id in enumerate(ids, start=1):
        assert (fetcher.fetch(file_id) / "model.safetensors").stat().st_size == SIZE
        on_disk = sum(
            (tmp_path / name / "model.safetensors").stat().st_size for name in cached(tmp_path)
        )
        assert on_disk <= 3 * SIZE + SIZE // 2
        assert cached(tmp_path) == set(ids[max(0, count - 3) : count])

    stats = fetcher.stats()
    assert (stats.entries, stats.bytes, stats.misses, stats.hits) == (3, 3 * SIZE, 10, 0)
    assert (stats.evictions, stats.evicted_bytes) == (7, 7 * SIZE)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith((".evicted", ".st"))]


def test_the_least_recently_used_goes_first(bank: Bank, tmp_path: Path) -> None:
    a, b, c, d = put(bank, 4)
    fetcher = ArtifactFetcher(bank.client(), tmp_path, max_bytes=3 * SIZE)
    for file_id in (a, b, c):
        fetcher.fetch(file_id)
    with fetcher.hold(a):  # a used again: b is now the least recently used
        pass
    # Another process sharing the cache (its own view of the sizes) fetches the fourth.
    other = ArtifactFetcher(bank.client(), tmp_path, max_bytes=3 * SIZE)

    other.fetch(d)

    assert cached(tmp_path) == {a, c, d}
    assert other.stats().evictions == 1
    assert fetcher.stats().hits == 1
    assert downloads(bank, a) == 1


def test_an_entry_held_here_is_never_evicted(bank: Bank, tmp_path: Path) -> None:
    ids = put(bank, 5)
    fetcher = ArtifactFetcher(bank.client(), tmp_path, max_bytes=2 * SIZE)

    with fetcher.hold(ids[0]) as held:
        for file_id in ids[1:]:
            fetcher.fetch(file_id)
            assert ids[0] in cached(tmp_path)
            assert (held / "model.safetensors").stat().st_size == SIZE
        assert cached(tmp_path) == {ids[0], ids[4]}
        assert fetcher.trim() == []  # it fits, with the held entry counted

    fetcher.fetch(ids[1])  # now the held one is just the least recently used

    assert cached(tmp_path) == {ids[4], ids[1]}


def test_an_entry_held_by_another_process_is_never_evicted(bank: Bank, tmp_path: Path) -> None:
    held_id, *others = put(bank, 4)
    context = multiprocessing.get_context("spawn")
    held: Queue[str] = context.Queue()
    release = context.Event()
    arguments = (bank.url, KEY, str(tmp_path), held_id, held, release)
    child = context.Process(target=children.hold, args=arguments)
    child.start()
    try:
        assert held.get(timeout=60) == str(tmp_path / held_id)
        fetcher = ArtifactFetcher(bank.client(), tmp_path, max_bytes=SIZE)

        for file_id in others:
            fetcher.fetch(file_id)
            assert cached(tmp_path) == {held_id}  # each new one left; the held one stayed

        assert fetcher.trim() == []
    finally:
        release.set()
        child.join(timeout=30)
    assert child.exitcode == 0

    fetcher.fetch(others[0])

    assert cached(tmp_path) == {others[0]}
    assert downloads(bank, held_id) == 1


def test_an_entry_larger_than_the_budget_is_served_then_evicted(bank: Bank, tmp_path: Path) -> None:
    [file_id] = put(bank, 1)
    fetcher = ArtifactFetcher(bank.client(), tmp_path, max_bytes=SIZE // 10)

    with fetcher.hold(file_id) as outer:
        with fetcher.hold(file_id) as inner:
            assert inner == outer
        assert (outer / "model.safetensors").stat().st_size == SIZE  # still held by `outer`

    assert cached(tmp_path) == set()
    assert fetcher.stats().model_dump(include={"misses", "hits", "evictions", "entries"}) == {
        "misses": 1,
        "hits": 1,
        "evictions": 1,
        "entries": 0,
    }


def test_a_cached_entry_is_served_while_data_bank_is_down(tmp_path: Path) -> None:
    with ExitStack() as stack:
        with serve_bank(tmp_path / "bank") as local:
            client = stack.enter_context(local.client())
            served, never_fetched = local.put(artifact(1)), local.put(artifact(2))
            fetcher = ArtifactFetcher(client, tmp_path / "cache", max_bytes=10 * SIZE)
            first = (fetcher.fetch(served) / "model.safetensors").read_bytes()
        # Data Bank is stopped now.

        with fetcher.hold(served) as directory:
            assert (directory / "model.safetensors").read_bytes() == first
        with pytest.raises(TransientError):
            fetcher.fetch(never_fetched)

    assert fetcher.stats().hits == 1


class Gated:
    """A downloader whose downloads wait for `opened`, as a slow Data Bank."""

    def __init__(self, inner: FileDownloader) -> None:
        self.inner = inner
        self.opened = threading.Event()

    def download_to(self, file_id: str, path: Path) -> Path:
        assert self.opened.wait(timeout=30)
        return self.inner.download_to(file_id, path)


def test_concurrent_first_holds_download_once(bank: Bank, tmp_path: Path) -> None:
    [file_id] = put(bank, 1)
    gated = Gated(bank.client())
    fetcher = ArtifactFetcher(gated, tmp_path, max_bytes=10 * SIZE)

    def read() -> bytes:
        with fetcher.hold(file_id) as directory:
            return (directory / "model.safetensors").read_bytes()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = [pool.submit(read) for _ in range(8)]
        # One downloads (held at the gate); the seven others wait on its lock, past the check.
        wait_until(lambda: flock_waiters(tmp_path / f".{file_id}.lock") == 7, what="7 waiters")
        gated.opened.set()
        bodies = {answer.result(timeout=30) for answer in answers}

    assert len(bodies) == 1
    assert len(bodies.pop()) == SIZE
    assert downloads(bank, file_id) == 1
    stats = fetcher.stats()
    assert (stats.misses, stats.hits) == (1, 7)
    assert stats.download_bytes > SIZE  # the tar: the file and its headers
    assert stats.download_seconds > 0


def test_strays_in_the_cache_are_no_entries_and_leftovers_go(bank: Bank, tmp_path: Path) -> None:
    [file_id] = put(bank, 1)
    (tmp_path / ("a" * 64)).write_bytes(b"a file, not an entry")
    (tmp_path / ("b" * 64)).symlink_to(tmp_path / "nowhere")
    (tmp_path / "not-an-id").mkdir()
    (tmp_path / f".evicted-{'c' * 64}-dead").mkdir()  # an evictor died before removing it
    (tmp_path / f".staging-{file_id}-dead").mkdir()  # a download died before renaming it
    fetcher = ArtifactFetcher(bank.client(), tmp_path, max_bytes=SIZE)

    assert fetcher.stats().entries == 0
    assert (fetcher.fetch(file_id) / "model.safetensors").exists()

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["a" * 64, "b" * 64, "not-an-id", file_id, f".{file_id}.lock", f".{file_id}.use"]
    )
    assert fetcher.stats().entries == 1


def test_a_missing_cache_has_no_entries(bank: Bank, tmp_path: Path) -> None:
    fetcher = ArtifactFetcher(bank.client(), tmp_path / "not-yet", max_bytes=SIZE)
    assert fetcher.stats().entries == 0
    assert fetcher.trim() == []


def test_an_unbounded_cache_keeps_everything(bank: Bank, tmp_path: Path) -> None:
    ids = put(bank, 3)
    fetcher = ArtifactFetcher(bank.client(), tmp_path)
    for file_id in ids:
        fetcher.fetch(file_id)
    assert cached(tmp_path) == set(ids)
    assert fetcher.stats().max_bytes is None
