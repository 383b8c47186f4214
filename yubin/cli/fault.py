"""`yubin lab fault add|list|remove`: lab faults of a site, over its admin API (`/v1/faults`).

A fault makes the site's MX answer 4xx/5xx, drop the connection or delay its reply for a share of
sessions, or makes the lab's DNS answer SERVFAIL for a domain, until it expires (see docs/faults.md).
Without `--admin-url` the running lab's admin API is used (`--site`, default alpha.test).
"""

import argparse
import os
import re
from datetime import UTC, datetime
from typing import Any

from yubin.cli.admin import URL_ENV, call, connection_options, output, path_part
from yubin.cli.errors import CliError
from yubin.cli.queue import printable

KINDS = ("smtp-reply", "drop", "delay", "dns-servfail")
STAGES = ("connect", "mail", "rcpt", "data")
DEFAULT_EXPIRES = "10m"
_DURATION = re.compile(r"(\d{1,6})([smh]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600}


def duration_s(text: str) -> int:
    """`90`, `90s`, `15m`, `2h` in seconds (the API bounds it: at most 24 h)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90, 90s, 15m, 2h)")
    return int(match[1]) * _UNIT_S[match[2]]


def add_parser(lab_commands: argparse._SubParsersAction) -> None:
    fault = lab_commands.add_parser(
        "fault",
        help="inject faults: MX 4xx/5xx, dropped connections, delays; DNS SERVFAIL (admin API)",
        description="Make a site's MX misbehave for a share of sessions, or the lab's DNS answer SERVFAIL "
        "for a domain, until the fault expires or is removed. Then watch `yubin trace --lab`.",
    )
    commands = fault.add_subparsers(dest="fault_command", required=True, metavar="COMMAND")
    p = commands.add_parser("add", help="add a fault to a site (--site, default alpha.test)")
    p.add_argument("kind", choices=KINDS, help="what goes wrong")
    p.add_argument("--reply", help='smtp-reply: the 4xx/5xx reply, e.g. "451 4.3.0 lab fault"')
    p.add_argument("--delay", type=float, metavar="SECONDS", help="delay: how long the reply is held back")
    p.add_argument("--domain", help="dns-servfail: the domain (and every name under it)")
    p.add_argument("--stage", choices=STAGES, help="MX faults: where it strikes (default data)")
    p.add_argument("--share", type=float, default=1.0, help="share of sessions it hits, 0..1 (default 1)")
    p.add_argument(
        "--expires",
        type=duration_s,
        default=duration_s(DEFAULT_EXPIRES),
        metavar="DURATION",
        help=f"when it ends by itself: 90, 90s, 15m, 2h (default {DEFAULT_EXPIRES}, at most 24h)",
    )
    connection_options(p)
    p.set_defaults(handler=fault_add)
    p = commands.add_parser("list", help="list a site's active faults")
    connection_options(p)
    p.set_defaults(handler=fault_list)
    p = commands.add_parser("remove", help="remove a fault before it expires")
    p.add_argument("id", help="the fault's id (from `yubin lab fault list`)")
    connection_options(p)
    p.set_defaults(handler=fault_remove)


def _use_lab_unless_told(args: argparse.Namespace) -> None:
    if not (args.admin_url or os.environ.get(URL_ENV)):
        args.lab = True


def describe(fault: dict[str, Any], now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    left = (datetime.fromisoformat(fault["expires_at"]) - now).total_seconds()
    what = {
        "smtp-reply": f"reply {fault.get('reply')!r}",
        "drop": "drop the connection",
        "delay": f"delay {fault.get('delay_s')} s",
        "dns-servfail": f"SERVFAIL for {fault.get('domain')}",
    }.get(fault["kind"], fault["kind"])
    where = f" at {fault['stage']}" if fault.get("stage") else ""
    return printable(
        f"{fault['id']}  {fault['kind']:<12} {what}{where}, share {fault['share']:g}, "
        f"expires in {max(left, 0):.0f} s"
    )


def fault_add(args: argparse.Namespace) -> int:
    _use_lab_unless_told(args)
    body: dict[str, Any] = {"kind": args.kind, "share": args.share, "expires_in_s": args.expires}
    for field, value in (
        ("reply", args.reply),
        ("delay_s", args.delay),
        ("domain", args.domain),
        ("stage", args.stage),
    ):
        if value is not None:
            body[field] = value
    try:
        data = call(args, None, "POST", "/v1/faults", json=body)
    except CliError as exc:
        raise CliError(f"fault refused: {exc}", exc.code) from None
    return output(args, data, f"added {describe(data)}")


def fault_list(args: argparse.Namespace) -> int:
    _use_lab_unless_told(args)
    data = call(args, None, "GET", "/v1/faults")
    lines = [describe(fault) for fault in data["faults"]]
    return output(args, data, "\n".join(lines) if lines else "no faults")


def fault_remove(args: argparse.Namespace) -> int:
    _use_lab_unless_told(args)
    call(args, None, "DELETE", f"/v1/faults/{path_part(args.id)}")
    return output(args, {"removed": args.id}, f"removed fault {printable(args.id)}")
