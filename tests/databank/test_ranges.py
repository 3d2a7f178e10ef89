"""The Range parser and Content-Range checks, by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from databank.ranges import (
    ByteRange,
    ContentRange,
    UnsatisfiableRangeError,
    format_content_range,
    format_unsatisfied_range,
    parse_content_range,
    parse_range,
    resume_from,
)

sizes = st.integers(min_value=0, max_value=10**12)
offsets = st.integers(min_value=0, max_value=2 * 10**12)


@given(sizes, offsets, offsets)
def test_a_span_is_clamped_to_the_file_or_unsatisfiable(size: int, first: int, last: int) -> None:
    header = f"bytes={first}-{last}"
    if last < first:
        assert parse_range(header, size) is None
    elif first >= size:
        with pytest.raises(UnsatisfiableRangeError):
            parse_range(header, size)
    else:
        assert parse_range(header, size) == ByteRange(first, min(last, size - 1))


@given(sizes, offsets)
def test_an_open_span_runs_to_the_end(size: int, first: int) -> None:
    if first >= size:
        with pytest.raises(UnsatisfiableRangeError):
            parse_range(f"bytes={first}-", size)
    else:
        span = parse_range(f"bytes={first}-", size)
        assert span == ByteRange(first, size - 1)
        assert span.length == size - first


@given(sizes, offsets)
def test_a_suffix_is_the_last_n_bytes(size: int, count: int) -> None:
    if count == 0 or size == 0:
        with pytest.raises(UnsatisfiableRangeError):
            parse_range(f"bytes=-{count}", size)
    else:
        span = parse_range(f"bytes=-{count}", size)
        assert span == ByteRange(max(0, size - count), size - 1)
        assert span.length == min(count, size)


@given(st.text(), sizes)
def test_any_header_parses_to_a_span_inside_the_file_or_a_defined_outcome(
    header: str, size: int
) -> None:
    try:
        span = parse_range(header, size)
    except UnsatisfiableRangeError:
        return
    if span is not None:
        assert 0 <= span.start <= span.end < size


@pytest.mark.parametrize(
    "header",
    [
        None,
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes=1-x",
        "bytes=-x",
        "lines=0-1",
        "bytes=0-1,2-3",
        "bytes=٣-",
        "bytes=1",
    ],
)
def test_headers_the_server_cannot_use_select_the_whole_file(header: str | None) -> None:
    assert parse_range(header, 100) is None


def test_the_unit_is_case_insensitive_and_outer_spaces_are_tolerated() -> None:
    assert parse_range(" Bytes= 1-2 ", 10) == ByteRange(1, 2)
    assert parse_range("bytes=1 - 2", 10) is None


@given(sizes.filter(lambda size: size > 0), st.data())
def test_content_range_round_trips(size: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(min_value=0, max_value=size - 1))
    end = data.draw(st.integers(min_value=start, max_value=size - 1))

    text = format_content_range(ByteRange(start, end), size)

    assert parse_content_range(text) == ContentRange(start, end, size)


@pytest.mark.parametrize(
    "value", [None, "", "bytes */10", "bytes 5-2/10", "bytes 0-10/10", "items 0-1/2", "bytes 0-1"]
)
def test_content_ranges_that_do_not_describe_a_span_are_none(value: str | None) -> None:
    assert parse_content_range(value) is None


def test_unsatisfied_range_names_the_size() -> None:
    assert format_unsatisfied_range(42) == "bytes */42"


@given(st.integers(min_value=0))
def test_a_resume_is_never_a_suffix_range(offset: int) -> None:
    header = resume_from(offset)

    assert header == f"bytes={offset}-"
    assert not header.startswith("bytes=-")


def test_a_negative_resume_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        resume_from(-1)
