"""ArtifactFetcher: verified download, safe extraction, one download per id."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import threading
from pathlib import Path

import pytest

from databank import ArtifactFetcher, InvalidFileId, UnsafeArtifactError


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Store:
    """Satisfies `FileDownloader` from memory, counting downloads."""

    def __init__(self, *blobs: bytes) -> None:
        self.blobs = {hashlib.sha256(blob).hexdigest(): blob for blob in blobs}
        self.downloads = 0
        self.lock = threading.Lock()

    def download_to(self, file_id: str, path: Path) -> Path:
        with self.lock:
            self.downloads += 1
        path.write_bytes(self.blobs[file_id])
        return path


def test_fetch_extracts_once_and_reuses_the_cache(tmp_path: Path) -> None:
    blob = tar_of({"config.json": b"{}", "model.safetensors": b"weights"})
    store = Store(blob)
    fetcher = ArtifactFetcher(store, tmp_path / "cache")
    file_id = hashlib.sha256(blob).hexdigest()
    first = fetcher.fetch(file_id)
    assert (first / "model.safetensors").read_bytes() == b"weights"
    assert fetcher.fetch(file_id) == first
    assert store.downloads == 1
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        f".{file_id}.lock",
        f".{file_id}.use",
        file_id,
    ]


def test_concurrent_fetches_download_once(tmp_path: Path) -> None:
    blob = tar_of({"a": b"1"})
    store = Store(blob)
    fetcher = ArtifactFetcher(store, tmp_path)
    file_id = hashlib.sha256(blob).hexdigest()
    threads = [threading.Thread(target=fetcher.fetch, args=(file_id,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert store.downloads == 1
    assert (tmp_path / file_id / "a").read_bytes() == b"1"


def test_an_unsafe_artifact_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    blob = tar_of({"pytorch_model.bin": b"pickle"})
    fetcher = ArtifactFetcher(Store(blob), tmp_path)
    file_id = hashlib.sha256(blob).hexdigest()
    with pytest.raises(UnsafeArtifactError, match="pickled"):
        fetcher.fetch(file_id)
    assert not (tmp_path / file_id).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{file_id}.lock", f".{file_id}.use"]


def test_a_bad_id_is_refused_before_any_download(tmp_path: Path) -> None:
    store = Store()
    with pytest.raises(InvalidFileId):
        ArtifactFetcher(store, tmp_path).fetch("../etc")
    assert store.downloads == 0


def test_an_entry_removed_by_hand_is_fetched_again(tmp_path: Path) -> None:
    blob = tar_of({"a": b"1"})
    store = Store(blob)
    fetcher = ArtifactFetcher(store, tmp_path)
    file_id = hashlib.sha256(blob).hexdigest()
    shutil.rmtree(fetcher.fetch(file_id))
    assert (fetcher.fetch(file_id) / "a").exists()
    assert store.downloads == 2
