"""Lua scripts: `.lua` files shipped in each package's `lua/` folder, read here and only here.

A script may be several files joined in order (a shared prelude, such as the `pack` helper,
then the body), and may hold `{{name}}` placeholders filled from Python (the apply script
embeds the derivation rules, so the engine and the in-memory model read one table).
"""

from __future__ import annotations

import re
from importlib.resources import files

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def lua_source(package: str, *parts: str, **values: str) -> str:
    """The script made of `<package>/lua/<part>.lua` in order, its placeholders filled.

    `KeyError` for a placeholder without a value, `ValueError` for a value without one.
    """
    folder = files(package) / "lua"
    source = "\n".join((folder / f"{part}.lua").read_text(encoding="utf-8") for part in parts)
    unused = set(values) - set(_PLACEHOLDER.findall(source))
    if unused:
        raise ValueError(f"no placeholder for {sorted(unused)} in {package} {parts}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], source)
