"""A run or tokenizer directory appears complete or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumers.layout import ArtifactsLayout, staged


def test_the_layout_of_an_artifacts_root(tmp_path: Path) -> None:
    layout = ArtifactsLayout(tmp_path)
    assert layout.run_dir("r1") == tmp_path / "models" / "r1"
    assert layout.tokenizer_dir("t1") == tmp_path / "tokenizers" / "t1"
    assert layout.corpus_cache == tmp_path / "cache" / "corpora"
    assert layout.artifact_cache == tmp_path / "cache" / "artifacts"


def test_a_finished_block_renames_the_staging_directory_into_place(tmp_path: Path) -> None:
    final = tmp_path / "models" / "r1"
    with staged(final) as out:
        assert not final.exists()
        (out / "weights").write_text("w")
    assert (final / "weights").read_text() == "w"
    assert sorted(path.name for path in final.parent.iterdir()) == ["r1"]


def test_it_replaces_an_older_directory_and_clears_leftovers_of_a_killed_worker(
    tmp_path: Path,
) -> None:
    final = tmp_path / "r1"
    final.mkdir()
    (final / "old").write_text("old")
    leftover = tmp_path / ".staging-r1-deadbeef"
    leftover.mkdir()
    (leftover / "half").write_text("half")
    other = tmp_path / ".staging-r2-cafecafe"
    other.mkdir()

    with staged(final) as out:
        (out / "new").write_text("new")

    assert sorted(path.name for path in final.iterdir()) == ["new"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [".staging-r2-cafecafe", "r1"]


def test_a_failed_block_leaves_nothing_behind(tmp_path: Path) -> None:
    final = tmp_path / "r1"

    def fail() -> None:
        with staged(final) as out:
            (out / "half").write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert list(tmp_path.iterdir()) == []
