"""Loading a TOML config into a pydantic model, with errors that name the field."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A config that cannot be used; the message names the file, the field and the problem."""


def describe_validation_error(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid configuration ({err.error_count()} problem(s))"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        value = e.get("input")
        shown = "" if isinstance(value, (dict, list)) or value is None else f" (got {value!r})"
        lines.append(f"  {where}: {e['msg']}{shown}")
    return "\n".join(lines)


def load_config(path: str | Path, model: type[M]) -> M:
    """Read ``path`` (TOML) and validate it as ``model``; raises ConfigError."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return validate_config(data, model, str(p))


def validate_config(data: dict, model: type[M], source: str = "<config>") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(source, exc)) from None


ENV_CONFIG = "FIXGW_CONFIG"
DEFAULT_CONFIG = Path("configs") / "gateway.toml"


def find_config(explicit: str | Path | None = None, *, env: str = ENV_CONFIG,
                default: str | Path = DEFAULT_CONFIG, environ: dict | None = None,
                cwd: str | Path | None = None) -> Path:
    """The config file a command should use: ``--config``, then ``$FIXGW_CONFIG``, then
    ``./configs/gateway.toml``. Raises ``ConfigError`` saying where it looked.

    An explicit path or the variable is used as given (a missing file is an error that names
    it, never a silent fall-through to the default)."""
    import os
    environ = os.environ if environ is None else environ
    base = Path(cwd) if cwd is not None else Path.cwd()
    for given, source in ((explicit, "given with --config"), (environ.get(env), f"from ${env}")):
        if given:
            p = Path(given)
            p = p if p.is_absolute() else base / p
            if not p.is_file():
                raise ConfigError(f"{given}: config file not found ({source})")
            return p
    p = base / default
    if p.is_file():
        return p
    raise ConfigError(f"no config file found; looked at: --config (not given), ${env} (not set), "
                      f"{p} (not found). Pass --config PATH or set {env}=PATH")
