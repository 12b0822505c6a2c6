"""gateway.fix: our FIX 4.4 session engine (sans-IO, h11-style) and its drivers.

The public names, importable from here::

    from gateway.fix import (create_engine, BaseApplication, Unsupported, SessionSettings,
                             TlsConfig, new_event_loop, Message)

Re-exports are lazy (PEP 562 ``__getattr__``): ``import gateway.fix.raw`` or
``gateway.fix.quickfix_backend`` does not load the session engine, pydantic or the
dictionary, and nothing here ever imports quickfix. See README.md for the layout.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # engine.py: what processes use
    "create_engine": "engine", "Application": "engine", "BaseApplication": "engine",
    "SessionHandle": "engine", "Engine": "engine", "Unsupported": "engine",
    # transport.py
    "TlsConfig": "transport", "Limits": "transport", "new_event_loop": "transport",
    # codec.py / errors.py
    "Message": "codec", "Framer": "codec", "parse": "codec", "encode": "codec",
    "utc_timestamp": "codec", "fix_number": "codec",
    "FixError": "errors", "LocalFixError": "errors", "RemoteFixError": "errors",
    "GarbledMessage": "errors",
    # the sans-IO core
    "SessionSettings": "settings", "Session": "session", "Dictionary": "dictionary",
    "MemoryStore": "store", "FileStore": "store", "StoreLocked": "store",
    "NEED_DATA": "events",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway.fix' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gateway.fix.{module}"), name)
    globals()[name] = value        # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
