"""Reply narrowing."""

from __future__ import annotations

import pytest

from projections.replies import text, text_map


def test_text() -> None:
    assert text(b"a") == "a"
    assert text("a") == "a"
    with pytest.raises(TypeError, match="string reply"):
        text(1)


def test_text_map() -> None:
    assert text_map({b"k": "v"}) == {"k": "v"}
    with pytest.raises(TypeError, match="hash reply"):
        text_map([])
