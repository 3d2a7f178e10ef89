"""Read HTML in tests: the elements of a page (tag and attributes), found by tag and class."""

from __future__ import annotations

from html.parser import HTMLParser


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {name: value or "" for name, value in attrs}))


def elements(html: str, tag: str, css_class: str | None = None) -> list[dict[str, str]]:
    """The attributes of every `tag` element (with `css_class` among its classes, if given)."""
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return [
        attrs
        for name, attrs in parser.found
        if name == tag and (css_class is None or css_class in attrs.get("class", "").split())
    ]


def point_count(polyline: dict[str, str]) -> int:
    """How many points a polyline's `points` attribute holds."""
    return len(polyline["points"].split())
