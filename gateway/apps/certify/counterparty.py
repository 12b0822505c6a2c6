"""Where to connect: a counterparty from the command line or from our own TOML configs.

The configs are read loosely with tomllib (only the keys needed here), so that the
certifier also works on a config another version of the simulator or gateway wrote.
"""
from __future__ import annotations

import sys
from pathlib import Path

from gateway.apps.certify.runner import Target
from gateway.common.configfile import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CERT_COMP_ID = "CERT"


def _read(path: str | Path) -> dict:
    p = Path(path)
    try:
        return tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None


def from_sim_config(path: str | Path, venue: str, sender: str | None = None) -> tuple[Target, list[str]]:
    """A simulator venue's acceptor; returns the target and warnings about its CERT session."""
    data = _read(path)
    venues = data.get("venues") or []
    names = [str(v.get("name")) for v in venues if isinstance(v, dict)]
    match = next((v for v in venues if isinstance(v, dict) and str(v.get("name", "")).upper() == venue.upper()), None)
    if match is None:
        raise ConfigError(f"{path}: venues: no venue named {venue!r} (venues: {', '.join(names) or 'none'})")
    if "port" not in match:
        raise ConfigError(f"{path}: venues.{venue}.port: missing")
    sender = sender or CERT_COMP_ID
    target = Target(str(match.get("host", "127.0.0.1")), int(match["port"]), sender,
                    str(match.get("sender_comp_id") or match["name"]), label=f"sim venue {match['name']}")
    warnings = _reset_warnings(match.get("counterparties"), sender, f"{path}: venues.{match['name']}.counterparties",
                               default_resets=(sender == CERT_COMP_ID))
    return target, warnings


def from_gateway_config(path: str | Path, sender: str | None = None) -> tuple[Target, list[str]]:
    """The gateway's OMS acceptor; returns the target and warnings about its CERT session."""
    data = _read(path)
    oms = data.get("oms")
    if not isinstance(oms, dict):
        raise ConfigError(f"{path}: oms: missing section [oms]")
    if "port" not in oms:
        raise ConfigError(f"{path}: oms.port: missing")
    sender = sender or CERT_COMP_ID
    target = Target(str(oms.get("host", "127.0.0.1")), int(oms["port"]), sender, str(oms.get("comp_id", "FIXGW")),
                    label="gateway OMS acceptor")
    warnings = _reset_warnings(oms.get("clients"), sender, f"{path}: oms.clients", default_resets=False)
    target.logon_fields = _logon_fields(oms.get("clients"), sender)
    return target, warnings


def _logon_fields(entries, sender: str) -> tuple[tuple[int, str], ...]:
    """Username(553)/Password(554) the gateway checks for ``sender`` (from its client entry)."""
    entry = next((e for e in entries or () if isinstance(e, dict) and e.get("comp_id") == sender), None)
    if entry is None:
        return ()
    return tuple((tag, str(entry[key])) for tag, key in ((553, "username"), (554, "password")) if entry.get(key))


def _reset_warnings(entries, sender: str, where: str, default_resets: bool) -> list[str]:
    if entries is None:
        return [] if default_resets else [f"{where}: no client list; {sender} must exist with reset_on_logon = true"]
    entry = next((e for e in entries if isinstance(e, dict) and e.get("comp_id") == sender), None)
    if entry is None:
        return [f"{where}: no entry for {sender}: the counterparty will refuse our Logon"]
    if not entry.get("reset_on_logon", False):
        return [f"{where}: {sender} has reset_on_logon = false; every scenario starts at MsgSeqNum 1, "
                f"so it must be true"]
    return []
