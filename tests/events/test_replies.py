"""Reply narrowing refuses shapes no engine sends; packed replies split back into items."""

from __future__ import annotations

import pytest

from events import blob, entries, fields, raw, text, text_map, unpack


def test_text_and_raw_accept_both_string_types() -> None:
    assert text(b"a") == text("a") == "a"
    assert raw(b"a") == raw("a") == b"a"


@pytest.mark.parametrize("value", [1, None, 2.0])
def test_text_and_raw_refuse_other_types(value: object) -> None:
    with pytest.raises(TypeError, match="string reply"):
        text(value)
    with pytest.raises(TypeError, match="string reply"):
        raw(value)


def test_fields_and_entries() -> None:
    assert fields(None) == {}
    assert fields({"a": b"b"}) == {b"a": b"b"}
    assert entries(None) == []
    assert entries([(b"1-0", {b"k": b"v"})]) == [("1-0", {b"k": b"v"})]
    with pytest.raises(TypeError, match="field map"):
        fields([1])
    with pytest.raises(TypeError, match="list of entries"):
        entries(3)


def test_text_map() -> None:
    assert text_map({b"k": "v"}) == {"k": "v"}
    with pytest.raises(TypeError, match="hash reply"):
        text_map([])


def test_unpack_splits_length_prefixed_items() -> None:
    assert unpack(b"") == []
    assert unpack(b"3:a:b0:2:\xc3\xa9") == [b"a:b", b"", "é".encode()]
    assert blob(b"1:x") == b"1:x"
    assert blob(None) == b""
