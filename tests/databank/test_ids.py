"""File-id validation, by property: exactly 64 lowercase hex characters, nothing else."""

from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from databank import EMPTY_FILE_ID, FileId, InvalidFileId, is_file_id, validate_file_id

HEX = "0123456789abcdef"
file_ids = st.text(alphabet=HEX, min_size=64, max_size=64)


class _Holder(BaseModel):
    file_id: FileId


@given(st.binary())
def test_every_sha256_is_a_file_id(data: bytes) -> None:
    file_id = hashlib.sha256(data).hexdigest()

    assert validate_file_id(file_id) == file_id
    assert _Holder(file_id=file_id).file_id == file_id


@given(st.text())
def test_only_64_lowercase_hex_characters_are_accepted(text: str) -> None:
    expected = len(text) == 64 and all(char in HEX for char in text)

    assert is_file_id(text) is expected


@given(
    file_ids, st.integers(min_value=0, max_value=63), st.characters().filter(lambda c: c not in HEX)
)
def test_one_wrong_character_makes_an_id_invalid(file_id: str, index: int, char: str) -> None:
    broken = file_id[:index] + char + file_id[index + 1 :]

    with pytest.raises(InvalidFileId):
        validate_file_id(broken)
    with pytest.raises(ValidationError):
        _Holder(file_id=broken)


@given(file_ids, st.sampled_from(["\n", " ", "0", "A", "\x00"]))
def test_extra_characters_make_an_id_invalid(file_id: str, extra: str) -> None:
    assert is_file_id(file_id)
    for candidate in (file_id + extra, extra + file_id, file_id[:32] + extra + file_id[32:]):
        assert not is_file_id(candidate)


@pytest.mark.parametrize("text", [EMPTY_FILE_ID.upper(), EMPTY_FILE_ID[:-1], EMPTY_FILE_ID + "\n"])
def test_near_misses_are_rejected_with_a_readable_message(text: str) -> None:
    with pytest.raises(InvalidFileId) as caught:
        validate_file_id(text)

    assert "64 lowercase hex" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_huge_string_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidFileId) as caught:
        validate_file_id("z" * 10_000)

    assert len(str(caught.value)) < 200


def test_the_empty_file_id_is_the_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").hexdigest() == EMPTY_FILE_ID
    assert set(EMPTY_FILE_ID) <= set(string.hexdigits.lower())
