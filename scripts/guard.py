"""Fail on `Any`, `cast(` and `type: ignore` anywhere in the project's Python.

The project's types are its contract; these three escape hatches would let a boundary
lie. The patterns are spelled in pieces so this file does not flag itself.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOTS = ("events", "databank", "projections", "producers", "consumers", "inference",
         "trainledger", "tests", "bench", "scripts")
PATTERNS = {
    "Any": re.compile(r"\b" + "A" + r"ny\b"),
    "cast(": re.compile(r"\b" + "ca" + r"st\("),
    "type: ignore": re.compile("type" + r":\s*" + "ignore"),
}


def violations(root: Path) -> list[str]:
    """Return `path:line: pattern` for every forbidden construct under the project roots."""
    found: list[str] = []
    for top in ROOTS:
        for path in sorted((root / top).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                for name, pattern in PATTERNS.items():
                    if pattern.search(line):
                        found.append(f"{path.relative_to(root)}:{number}: {name}")
    return found


def main() -> int:
    found = violations(Path(__file__).resolve().parent.parent)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
