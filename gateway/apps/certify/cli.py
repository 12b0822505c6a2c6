"""`fixgw certify`: play FIX scenarios against a counterparty acceptor, or (``--listen``)
against an initiator that connects to us.

Exit status: 0 when every scenario passed, 1 when any failed or errored (or the
counterparty does not reset sequence numbers on logon), 2 for a usage problem or an
unreachable counterparty.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from gateway.apps.certify import counterparty
from gateway.apps.certify.compare import LOOSE, STRICT
from gateway.apps.certify.report import LivePrinter, Run, summary_table, write_json, write_junit
from gateway.apps.certify.runner import Options, ScenarioRunner, Target, Unreachable, check_reachable, reset_check
from gateway.apps.certify.script import builtin_suite, discover
from gateway.apps.certify.wire import Listener
from gateway.common.configfile import ConfigError


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=(
        "Run FIX 4.4 session certification scenarios (QuickFIX acceptance script format) against a "
        "counterparty acceptor, as the initiator. Without --scripts, runs the bundled suite."))
    where = p.add_argument_group("counterparty (either --host/--port/--target, --venue or --gateway)")
    where.add_argument("--host", default=None, help="acceptor host (default 127.0.0.1)")
    where.add_argument("--port", type=int, help="acceptor port")
    where.add_argument("--sender", help="our SenderCompID (default CERT)")
    where.add_argument("--target", help="the counterparty's CompID (our TargetCompID)")
    where.add_argument("--venue", metavar="NAME", help="a simulator venue from --config (e.g. configs/sim.toml)")
    where.add_argument("--gateway", action="store_true", help="the gateway's OMS acceptor from --config "
                                                              "(e.g. configs/gateway.toml)")
    where.add_argument("--config", metavar="TOML", help="the simulator or gateway config to read")
    where.add_argument("--username", help="Username(553) on our Logons (default: from --gateway's client entry)")
    where.add_argument("--password-env", metavar="VAR",
                       help="read Password(554) for our Logons from this environment variable "
                            "(default: from --gateway's client entry)")
    where.add_argument("--listen", metavar="HOST:PORT",
                       help="certify an initiator: be the acceptor on HOST:PORT and wait for it to connect "
                            "(--target is its CompID, --sender ours); runs the initiator suite by default")
    p.add_argument("--app", action="store_true",
                   help="run the bundled application-level suite (order flow) instead of the session suite")
    p.add_argument("--accept-timeout", type=float, default=30.0, metavar="S",
                   help="with --listen: seconds to wait for each connection of the initiator (default 30)")
    p.add_argument("--scripts", nargs="+", action="extend", metavar="DIR|FILE",
                   help=f"scenario files or directories of *.def (default: {builtin_suite()})")
    p.add_argument("-k", dest="select", action="append", metavar="TEXT",
                   help="only scenarios whose name contains TEXT (repeatable)")
    p.add_argument("--heartbeat", type=int, default=30, metavar="N",
                   help="HeartBtInt for <HEARTBEAT> in scripts (default 30)")
    p.add_argument("--loose", action="store_true", help="loose comparison: field order ignored, BodyLength "
                                                        "not compared, Text(58) by prefix")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for each expected message or disconnect (default 10)")
    p.add_argument("--map", action="append", default=[], metavar="OLD=NEW",
                   help="replace a CompID in scripts (49/56/115/128), e.g. --map TW=CERT --map ISLD=ALPHA")
    p.add_argument("--no-reset-check", action="store_true",
                   help="skip the check that the counterparty resets sequence numbers on logon")
    p.add_argument("--junit", metavar="OUT.xml", help="write a JUnit XML report")
    p.add_argument("--json", metavar="OUT.json", help="write a JSON report")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no failure details under the live lines")
    return p


class UsageError(Exception):
    pass


def resolve_target(args: argparse.Namespace) -> tuple[Target, list[str]]:
    if sum(map(bool, (args.venue, args.gateway, args.listen))) > 1:
        raise UsageError("--venue, --gateway and --listen are exclusive")
    if args.listen:
        return listen_target(args), []
    if args.venue or args.gateway:
        if not args.config:
            raise UsageError("--venue/--gateway need --config")
        if args.venue:
            target, warnings = counterparty.from_sim_config(args.config, args.venue, args.sender)
        else:
            target, warnings = counterparty.from_gateway_config(args.config, args.sender)
        if args.host:
            target.host = args.host
        if args.port:
            target.port = args.port
        if args.target:
            target.target = args.target
    else:
        if not args.port or not args.target:
            raise UsageError("give --port and --target (or --venue NAME --config sim.toml, "
                             "or --gateway --config gateway.toml)")
        target = Target(args.host or "127.0.0.1", args.port, args.sender or counterparty.CERT_COMP_ID, args.target)
        warnings = []
    target.heartbeat = args.heartbeat
    fields = dict(target.logon_fields)
    if args.username:
        fields[553] = args.username
    if args.password_env:
        if args.password_env not in os.environ:
            raise UsageError(f"--password-env {args.password_env}: no such environment variable")
        fields[554] = os.environ[args.password_env]
    target.logon_fields = tuple(fields.items())
    return target, warnings


def listen_target(args: argparse.Namespace) -> Target:
    host, sep, port = args.listen.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--listen {args.listen!r}: expected HOST:PORT")
    if not args.target:
        raise UsageError("--listen needs --target (the initiator's CompID)")
    return Target(host or "127.0.0.1", int(port), args.sender or counterparty.CERT_COMP_ID, args.target,
                  args.heartbeat, label="initiator", listen=True)


def default_suite(args: argparse.Namespace) -> Path:
    if args.app:
        return builtin_suite("app")
    return builtin_suite("initiator" if args.listen else "acceptor")


def select_scripts(args: argparse.Namespace) -> list[Path]:
    sources = args.scripts or [default_suite(args)]
    missing = [s for s in sources if not Path(s).exists()]
    if missing:
        raise UsageError(f"no such script file or directory: {', '.join(map(str, missing))}")
    paths = discover(sources)
    if args.select:
        paths = [p for p in paths if any(k in p.stem for k in args.select)]
    if not paths:
        raise UsageError("no scenario selected")
    return paths


def parse_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise UsageError(f"--map {item!r}: expected OLD=NEW")
        out[old] = new
    return out


def main(argv: list[str] | None = None, prog: str = "fixgw certify", command: str = "certify") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        paths = select_scripts(args)
        if args.list:
            print("\n".join(str(p) for p in paths))
            return 0
        target, warnings = resolve_target(args)
        options = Options(mode=LOOSE if args.loose else STRICT, timeout=args.timeout, compid_map=parse_map(args.map),
                          accept_timeout=args.accept_timeout)
    except (UsageError, ConfigError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if target.listen:
        return certify_initiator(target, paths, options, args, prog)
    try:
        check_reachable(target)
    except Unreachable as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return certify(target, paths, options, args, warnings, prog)


def certify_initiator(target: Target, paths: list[Path], options: Options, args: argparse.Namespace,
                      prog: str) -> int:
    """--listen: bind first (a taken port is a usage problem, exit 2), then run as certify()."""
    try:
        listener = Listener(target.host, target.port)
    except OSError as exc:
        print(f"{prog}: cannot listen on {target.host}:{target.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    target.port = listener.port  # port 0 picks a free one
    try:
        return certify(target, paths, options, args, [], prog, listener)
    finally:
        listener.close()


def certify(target: Target, paths: list[Path], options: Options, args: argparse.Namespace,
            warnings: list[str], prog: str, listener: Listener | None = None) -> int:
    out = sys.stdout
    run = Run(target, options.mode, warnings=list(warnings))
    out.write(f"certifying {target.describe()}: {len(paths)} scenario(s), {options.mode} comparison, "
              f"{options.timeout:g}s timeout per expectation\n")
    for w in warnings:
        out.write(f"warning: {w}\n")
    started = time.monotonic()
    if target.listen:
        out.write(f"note: the initiator must reset sequence numbers after a Logout (QuickFIX: ResetOnLogout=Y) "
                  f"and reconnect within {options.accept_timeout:g}s; every scenario ends with a Logout\n")
    elif not args.no_reset_check:
        out.write(f"note: every scenario logs on with MsgSeqNum=1 and no ResetSeqNumFlag, so {target.target} "
                  f"must reset sequence numbers on logon for {target.sender} (ResetOnLogon=Y); checking... ")
        out.flush()
        try:
            run.preflight = reset_check(target, timeout=options.timeout)
        except Unreachable as exc:
            out.write("\n")
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
        out.write("ok\n" if run.preflight is None else f"FAILED\n  {run.preflight}\n")
    if run.preflight is None:
        printer = LivePrinter(out, verbose=not args.quiet)
        runner = ScenarioRunner(target, options, listener)
        run.outcomes = runner.run_paths(paths, printer.start, printer.done)
    run.wall_seconds = time.monotonic() - started
    out.write("\n" + summary_table(run) + "\n")
    if args.json:
        write_json(run, args.json)
    if args.junit:
        write_junit(run, args.junit)
    return 0 if run.ok else 1
