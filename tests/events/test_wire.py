"""Reply narrowing refuses shapes no engine sends."""

from __future__ import annotations

import pytest

from events.wire import entries, fields, raw, text


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
