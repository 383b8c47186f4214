"""`yubin queue dead|deferred ...`: the queues of a site, over the admin API (`/v1/queue`).

Dead letters are stream entries the bus gave up on (see docs/architecture.md): `retry` puts one back on
its stream once the cause is fixed, `delete` drops it and releases its message body.

Deferred messages wait in the retry sets for their next attempt: `retry` attempts now, `bounce` gives up
and sends the sender a DSN, `delete` drops the message without one.
"""

import argparse
import json
from collections.abc import Callable
from typing import Any

from yubin.cli.admin import call, connection_options, output, path_part


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    queue = subparsers.add_parser(
        "queue", help="look at a site's queues: deferred messages and dead letters (admin API)"
    )
    areas = queue.add_subparsers(dest="queue_area", required=True, metavar="AREA")
    dead = areas.add_parser("dead", help="entries the services gave up on")
    commands = dead.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("list", help="list the dead letters, oldest first")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    connection_options(p)
    p.set_defaults(handler=dead_list)
    add_entry_commands(
        commands,
        ("id", "the dead letter's id (from `yubin queue dead list`)"),
        ("show", "show one dead letter with its payload", dead_show),
        ("retry", "put a dead letter back on its stream", dead_retry),
        ("delete", "drop a dead letter for good (releases its message body)", dead_delete),
    )

    deferred = areas.add_parser("deferred", help="messages waiting for their next attempt")
    commands = deferred.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("list", help="list the deferred messages, the next due first")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    connection_options(p)
    p.set_defaults(handler=deferred_list)
    add_entry_commands(
        commands,
        ("queue_id", "the message's queue id (from `yubin queue deferred list`)"),
        ("retry", "attempt delivery now", deferred_retry),
        ("bounce", "give up now: the sender gets a DSN", deferred_bounce),
        ("delete", "drop the message without a DSN (releases its body)", deferred_delete),
    )


def add_entry_commands(
    commands: argparse._SubParsersAction,
    entry: tuple[str, str],
    *verbs: tuple[str, str, Callable[[argparse.Namespace], int]],
) -> None:
    """One subcommand per verb, each taking the entry it acts on (`entry`: argument name and help)."""
    for name, help_text, handler in verbs:
        p = commands.add_parser(name, help=help_text)
        p.add_argument(entry[0], help=entry[1])
        connection_options(p)
        p.set_defaults(handler=handler)


def printable(value: Any) -> str:
    """What came with a message (addresses, reasons) shown without the terminal acting on it."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in str(value))


def line(dead: dict[str, Any]) -> str:
    what = dead.get("queue_id") or dead.get("entry_id")
    recipients = ",".join(dead.get("recipients") or [])
    return printable(
        f"{dead['id']:<16} {dead['stream']:<22} {what:<14} {dead.get('sender') or '-'} -> {recipients or '-'}"
        f"  ({dead['reason']})"
    )


def dead_list(args: argparse.Namespace) -> int:
    data = call(args, None, "GET", "/v1/queue/dead", params={"limit": args.limit})
    lines = [line(d) for d in data["dead_letters"]]
    if data["total"] > len(lines):
        lines.append(f"... {data['total'] - len(lines)} more (--limit)")
    return output(args, data, "\n".join(lines) if lines else "no dead letters")


def dead_show(args: argparse.Namespace) -> int:
    data = call(args, None, "GET", f"/v1/queue/dead/{path_part(args.id)}")
    text = "\n".join(f"{key:<12} {printable(value)}" for key, value in data.items() if key != "data")
    if data.get("data"):
        try:
            payload = json.dumps(json.loads(data["data"]), indent=2, ensure_ascii=True)
        except ValueError:
            payload = printable(data["data"])
        text += f"\npayload:\n{payload}"
    return output(args, data, text)


def dead_retry(args: argparse.Namespace) -> int:
    data = call(args, None, "POST", f"/v1/queue/dead/{path_part(args.id)}/retry")
    return output(args, data, f"retried {args.id}: back on {data['stream']} as {data['entry_id']}")


def dead_delete(args: argparse.Namespace) -> int:
    call(args, None, "DELETE", f"/v1/queue/dead/{path_part(args.id)}")
    return output(args, {"deleted": args.id}, f"deleted {args.id}")


def deferred_line(message: dict[str, Any]) -> str:
    recipients = ",".join(message.get("recipients") or [])
    return printable(
        f"{message['queue_id']:<22} {message['queue']:<8} next {message['next_attempt_at'][:19]}"
        f" attempts {message['attempts']:<3} {message.get('sender') or '<>'} -> {recipients}"
        f"  ({message.get('last_error') or 'no error recorded'})"
    )


def deferred_list(args: argparse.Namespace) -> int:
    data = call(args, None, "GET", "/v1/queue/deferred", params={"limit": args.limit})
    lines = [deferred_line(m) for m in data["deferred"]]
    if data["total"] > len(lines):
        lines.append(f"... {data['total'] - len(lines)} more (--limit)")
    return output(args, data, "\n".join(lines) if lines else "no deferred messages")


def _deferred_action(args: argparse.Namespace, method: str, suffix: str, done: str) -> int:
    data = call(args, None, method, f"/v1/queue/deferred/{path_part(args.queue_id)}{suffix}")
    queues = ", ".join(m["queue"] for m in data["messages"])
    return output(args, data, printable(f"{done} {args.queue_id} ({queues})"))


def deferred_retry(args: argparse.Namespace) -> int:
    return _deferred_action(args, "POST", "/retry", "retrying")


def deferred_bounce(args: argparse.Namespace) -> int:
    return _deferred_action(args, "POST", "/bounce", "bounced")


def deferred_delete(args: argparse.Namespace) -> int:
    return _deferred_action(args, "DELETE", "", "deleted")
