"""`yubin trace`: a message's journey through both sites, from the trace streams (`yubin:stream:trace`).

Queue ids are per site (beta's MX gives the message a new one), the Message-ID is the same everywhere:
`yubin trace --lab <Message-ID or queue id>` follows the message from alpha's submission to beta's
Maildir, in time order.
"""

import argparse
import json
from datetime import datetime
from typing import Any

import redis

from shared.streams import TRACE
from yubin.cli.errors import CliError, ExitCode
from yubin.cli.lab_endpoints import add_lab_options, load_lab


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "trace",
        help="show a message's journey (trace events of every site)",
        description="Show the trace events of a message, found by Message-ID or queue id, in every site of "
        "the lab. Without an id: the last events.",
    )
    parser.add_argument("id", nargs="?", help="Message-ID (with or without <>) or queue id")
    parser.add_argument("--last", type=int, default=20, help="without an id: how many events per site")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    add_lab_options(parser)
    parser.set_defaults(handler=run, lab=True)


def site_events(url: str, domain: str, count: int | None) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        entries = client.xrevrange(TRACE, count=count) if count else client.xrange(TRACE)
    except redis.RedisError as exc:
        raise CliError(f"cannot read {domain}'s trace stream at {url}: {exc}", ExitCode.UNAVAILABLE) from exc
    finally:
        client.close()
    return [{"site": domain, **json.loads(fields[b"data"])} for _, fields in entries]


def matches(event: dict[str, Any], wanted: str) -> bool:
    wanted = wanted.strip()  # pasted from a message, it may carry its CR
    message_id = (event.get("message_id") or "").strip("<>")
    return event.get("queue_id") == wanted or message_id == wanted.strip("<>")


def run(args: argparse.Namespace) -> int:
    info = load_lab(args.lab_info)
    events: list[dict[str, Any]] = []
    for domain, site in info["sites"].items():
        if "redis" not in site:
            raise CliError(f"the lab info has no Redis address for {domain}", ExitCode.USAGE)
        events += site_events(site["redis"], domain, None if args.id else args.last)
    if args.id:
        first = [e for e in events if matches(e, args.id)]
        # A queue id names the message at one site; follow it to the others by its Message-ID.
        message_ids = {e["message_id"] for e in first if e.get("message_id")}
        events = [e for e in events if e in first or e.get("message_id") in message_ids]
        if not events:
            raise CliError(f"no trace events for {args.id}", ExitCode.REJECTED)
    events.sort(key=lambda e: e["at"])
    for event in events:
        if args.json:
            print(json.dumps(event))
            continue
        at = datetime.fromisoformat(event["at"]).strftime("%H:%M:%S.%f")[:-3]
        detail = " ".join(f"{k}={v}" for k, v in event.get("detail", {}).items())
        print(
            f"{at} {event['site']:<10} {event['service']:<10} {event['event']:<10} {event['queue_id']}  {detail}"
        )
    return ExitCode.OK
