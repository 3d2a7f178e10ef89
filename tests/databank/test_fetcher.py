"""The corpus fetcher: a verified cache keyed by file id, downloaded once per machine."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.queues import Queue
from pathlib import Path

import pytest

from databank import CorpusFetcher, IntegrityError, InvalidFileId
from tests.databank import children
from tests.databank.conftest import KEY, Bank
from tests.databank.faults import Fault


@pytest.fixture
def corpus(bank: Bank) -> tuple[str, bytes]:
    data = os.urandom(300_000)
    return bank.client().upload(lambda: [data]).file_id, data


def _downloads(bank: Bank, file_id: str) -> int:
    return len(bank.faults.requests("GET", f"/files/{file_id}"))


def test_a_fetched_corpus_is_verified_and_read_only(
    bank: Bank, corpus: tuple[str, bytes], tmp_path: Path
) -> None:
    file_id, data = corpus

    path = CorpusFetcher(bank.client(), tmp_path).fetch(file_id)

    assert path == tmp_path / file_id
    assert path.read_bytes() == data
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert (tmp_path / f"{file_id}.verified").exists()


def test_a_cached_corpus_is_not_downloaded_again(
    bank: Bank, corpus: tuple[str, bytes], tmp_path: Path
) -> None:
    file_id, data = corpus
    CorpusFetcher(bank.client(), tmp_path).fetch(file_id)

    again = CorpusFetcher(bank.client(), tmp_path).fetch(file_id)

    assert again.read_bytes() == data
    assert _downloads(bank, file_id) == 1


def test_a_corrupt_cache_entry_is_downloaded_again(
    bank: Bank, corpus: tuple[str, bytes], tmp_path: Path
) -> None:
    file_id, data = corpus
    fetcher = CorpusFetcher(bank.client(), tmp_path)
    path = fetcher.fetch(file_id)
    path.chmod(0o644)
    with path.open("r+b") as entry:
        entry.seek(1000)
        entry.write(b"\x00" * 10)

    again = fetcher.fetch(file_id)

    assert again.read_bytes() == data
    assert _downloads(bank, file_id) == 2


@pytest.mark.parametrize("damage", ["marker-lost", "entry-touched", "marker-garbled"])
def test_an_entry_whose_marker_does_not_match_is_rehashed_not_downloaded(
    bank: Bank, corpus: tuple[str, bytes], tmp_path: Path, damage: str
) -> None:
    file_id, data = corpus
    fetcher = CorpusFetcher(bank.client(), tmp_path)
    path = fetcher.fetch(file_id)
    marker = tmp_path / f"{file_id}.verified"
    if damage == "marker-lost":
        marker.unlink()
    elif damage == "entry-touched":
        os.utime(path, ns=(1, 1))
    else:
        marker.write_text("{")

    again = fetcher.fetch(file_id)

    assert again.read_bytes() == data
    assert _downloads(bank, file_id) == 1
    assert marker.exists()


def test_an_entry_without_a_marker_that_does_not_match_is_replaced(
    bank: Bank, corpus: tuple[str, bytes], tmp_path: Path
) -> None:
    file_id, data = corpus
    (tmp_path / file_id).write_bytes(b"half a download that was renamed by hand")
    (tmp_path / f".{file_id}.abc.part").write_bytes(b"left by a crash")

    path = CorpusFetcher(bank.client(), tmp_path).fetch(file_id)

    assert path.read_bytes() == data
    assert sorted(entry.name for entry in tmp_path.iterdir()) == sorted(
        [file_id, f"{file_id}.verified", f"{file_id}.lock"]
    )


def test_a_failed_download_leaves_no_entry(
    bank: Bank, corpus: tuple[str, bytes], tmp_path: Path
) -> None:
    file_id, _ = corpus
    headers = (("content-type", "application/octet-stream"),)
    bank.faults.add(Fault(kind="answer", status=200, body=b"wrong bytes", headers=headers))

    with pytest.raises(IntegrityError):
        CorpusFetcher(bank.client(), tmp_path).fetch(file_id)

    assert not (tmp_path / file_id).exists()
    assert not (tmp_path / f"{file_id}.verified").exists()


def test_a_malformed_id_is_refused(bank: Bank, tmp_path: Path) -> None:
    with pytest.raises(InvalidFileId):
        CorpusFetcher(bank.client(), tmp_path).fetch("../etc/passwd")


def test_concurrent_fetches_from_threads_download_once(
    bank: Bank, corpus: tuple[str, bytes], tmp_path: Path
) -> None:
    file_id, data = corpus
    fetcher = CorpusFetcher(bank.client(), tmp_path)
    start = threading.Barrier(8)

    def fetch() -> Path:
        start.wait(timeout=30)
        return fetcher.fetch(file_id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        paths = list(pool.map(lambda _: fetch(), range(8)))

    assert set(paths) == {tmp_path / file_id}
    assert paths[0].read_bytes() == data
    assert _downloads(bank, file_id) == 1


def test_concurrent_fetches_from_processes_download_once(
    bank: Bank, corpus: tuple[str, bytes], tmp_path: Path
) -> None:
    file_id, data = corpus
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    results: Queue[str] = context.Queue()
    arguments = (bank.url, KEY, str(tmp_path), file_id, start, results)
    processes = [context.Process(target=children.fetch, args=arguments) for _ in range(3)]
    for process in processes:
        process.start()
    paths = {results.get(timeout=60) for _ in processes}
    for process in processes:
        process.join(timeout=30)

    assert [process.exitcode for process in processes] == [0, 0, 0]
    assert paths == {str(tmp_path / file_id)}
    assert (tmp_path / file_id).read_bytes() == data
    assert _downloads(bank, file_id) == 1
