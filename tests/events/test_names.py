"""Names that are built from parts keep the parts apart."""

from __future__ import annotations

from events import names


def test_each_node_has_its_own_upload_group() -> None:
    assert names.upload_group("n1") == "upload:n1"
    assert names.upload_group("n1") != names.upload_group("n2")
