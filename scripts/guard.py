"""Fail on the typing escape hatches (the `A`+`ny` type, `cast(...)`, ignore comments).

The project's types are its contract; these three escape hatches would let a boundary
lie. The check reads the syntax tree and the comments, so prose that says "any" is fine
while the name itself (bare, as `typing.` attribute, or imported under an alias), `cast(...)`
and an ignore comment are not. The name is spelled in pieces so this file passes a text search.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

ROOTS = ("events", "databank", "projections", "producers", "consumers", "inference",
         "trainledger", "tests", "bench", "scripts")  # fmt: skip
IGNORE_COMMENT = re.compile(r"type:\s*ignore")
ESCAPE = "A" + "ny"


def _tree_violations(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
        if isinstance(node, ast.Name | ast.Attribute) and name == ESCAPE:
            found.append((node.lineno, ESCAPE))
        elif isinstance(node, ast.ImportFrom):
            found.extend(
                (node.lineno, alias.name) for alias in node.names if alias.name in (ESCAPE, "cast")
            )
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name == "cast":
                found.append((node.lineno, "cast("))
    return found


def _comment_violations(source: str) -> list[tuple[int, str]]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [
        (token.start[0], "type: ignore")
        for token in tokens
        if token.type == tokenize.COMMENT and IGNORE_COMMENT.search(token.string)
    ]


def violations(root: Path) -> list[str]:
    """Return `path:line: construct` for every forbidden construct under the project roots."""
    found: list[str] = []
    for top in ROOTS:
        for path in sorted((root / top).rglob("*.py")):
            source = path.read_text()
            hits = _tree_violations(ast.parse(source, str(path))) + _comment_violations(source)
            found.extend(f"{path.relative_to(root)}:{line}: {what}" for line, what in sorted(hits))
    return found


def main() -> int:
    """Print every violation; exit 1 when there is one."""
    found = violations(Path(__file__).resolve().parent.parent)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
