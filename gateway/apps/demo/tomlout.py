"""A small TOML writer for the configs the demo generates (dicts from a loaded template).

Scalars and inline values first, then tables; a list of tables whose items hold nested
tables becomes an array of tables (``[[venues]]`` then ``[venues.latency]``). ``None``
values are left out (TOML has no null: the model's default applies).
"""
from __future__ import annotations

import json
import re

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _is_table_array(v) -> bool:
    return (isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)
            and any(isinstance(y, dict) for x in v for y in x.values()))


def _lines(d: dict, path: tuple[str, ...]) -> list[str]:
    out, tables = [], []
    for k, v in d.items():
        if v is None:
            continue
        if isinstance(v, dict) or _is_table_array(v):
            tables.append((k, v))
        else:
            out.append(f"{_key(k)} = {_value(v)}")
    for k, v in tables:
        name = ".".join(_key(p) for p in path + (k,))
        if isinstance(v, dict):
            out += ["", f"[{name}]"] + _lines(v, path + (k,))
        else:
            for item in v:
                out += ["", f"[[{name}]]"] + _lines(item, path + (k,))
    return out


def dumps(data: dict) -> str:
    return "\n".join(_lines(data, ())).lstrip("\n") + "\n"
