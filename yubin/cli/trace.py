"""`yubin trace`: a message's journey through both sites, from each site's admin API (`GET /v1/trace`).

Queue ids are per site (beta's MX gives the message a new one), the Message-ID is the same everywhere:
`yubin trace --lab <Message-ID or queue id>` follows the message from alpha's submission to beta's
Maildir and its POP3 retrieval, in time order, with any DSN it caused. No access to the sites' Redis is
needed: the admin URL and token of each site come from the lab info.
"""

import argparse
import json
from datetime import datetime
from typing import Any

import httpx

from yubin.cli.errors import CliError, ExitCode
from yubin.cli.lab_endpoints import add_lab_options, load_lab

PAGE = 1000
MAX_PAGES = 50
"""A message has a few dozen events; this bounds what one site's answer can make us read."""
_LINKS = ("notice_message_id", "original_message_id")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "trace",
        help="show a message's journey (trace events of every site)",
        description="Show the trace events of a message, found by Message-ID or queue id, in every site of "
        "the lab, with the DSNs it caused. Without an id: the last events.",
    )
    parser.add_argument("id", nargs="?", help="Message-ID (with or without <>) or queue id")
    parser.add_argument("--last", type=int, default=20, help="without an id: how many events per site")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    add_lab_options(parser)
    parser.set_defaults(handler=run, lab=True)


class Site:
    def __init__(self, domain: str, info: dict[str, Any]) -> None:
        if "admin" not in info or "admin_token" not in info:
            raise CliError(f"the lab info has no admin API for {domain}", ExitCode.USAGE)
        self.domain = domain
        self.client = httpx.Client(
            base_url=info["admin"].rstrip("/"),
            headers={"Authorization": f"Bearer {info['admin_token']}"},
            timeout=30.0,
        )

    def events(self, **params: Any) -> list[dict[str, Any]]:
        """Every event matching `params` (all pages), each with its site."""
        found: list[dict[str, Any]] = []
        since = None
        for _ in range(MAX_PAGES):
            page = self._get({"limit": PAGE, **params, **({"since": since} if since else {})})
            found += page["events"]
            since = page["next"]
            if since is None or params.get("last"):
                break
        return [{"site": self.domain, **event} for event in found]

    def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.client.get("/v1/trace", params=params)
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach {self.domain}'s admin API at {self.client.base_url}: {exc}",
                ExitCode.UNAVAILABLE,
            ) from exc
        if response.status_code != 200:
            raise CliError(
                f"{self.domain}'s admin API answered {response.status_code}: {response.text[:200]}",
                ExitCode.UNAVAILABLE,
            )
        return response.json()


def journey(sites: list[Site], wanted: str) -> list[dict[str, Any]]:
    """The events of `wanted` (queue id or Message-ID) at every site, following Message-IDs across sites
    and to the DSNs it caused (and back)."""
    wanted = wanted.strip()  # pasted from a message, it may carry its CR
    events: dict[tuple[str, str], dict[str, Any]] = {}
    message_ids: set[str] = set()
    for site in sites:
        for event in site.events(queue_id=wanted) + site.events(message_id=wanted):
            events[(event["site"], event["id"])] = event
    todo: set[str | None] = set()
    while True:
        for event in events.values():
            todo |= {event.get("message_id")} | {event.get("detail", {}).get(k) for k in _LINKS}
        todo = {m for m in todo if isinstance(m, str) and m} - message_ids
        if not todo:
            return list(events.values())
        for message_id in todo:
            message_ids.add(message_id)
            for site in sites:
                for event in site.events(message_id=message_id):
                    events[(event["site"], event["id"])] = event


def run(args: argparse.Namespace) -> int:
    info = load_lab(args.lab_info)
    sites = [Site(domain, site) for domain, site in info["sites"].items()]
    try:
        if args.id:
            events = journey(sites, args.id)
            if not events:
                raise CliError(f"no trace events for {args.id}", ExitCode.REJECTED)
        else:
            last = max(1, min(args.last, PAGE))
            events = [e for site in sites for e in site.events(last=True, limit=last)]
    finally:
        for site in sites:
            site.client.close()
    events.sort(key=lambda e: e["at"])
    for event in events:
        if args.json:
            print(json.dumps(event))
            continue
        print(text_line(event))
    return ExitCode.OK


def text_line(event: dict[str, Any]) -> str:
    """One event as a line for a terminal: the subject (accepted events) first and quoted, so nothing in
    it passes for another field; anything unprintable from mail escaped."""
    at = datetime.fromisoformat(event["at"]).strftime("%H:%M:%S.%f")[:-3]
    detail = dict(event.get("detail") or {})
    subject = detail.pop("subject", None)
    fields = [json.dumps(subject, ensure_ascii=False)] if isinstance(subject, str) else []
    fields += [f"{k}={v}" for k, v in detail.items()]
    line = f"{at} {event['site']:<10} {event['service']:<10} {event['event']:<10} {event['queue_id']}  "
    line += " ".join(fields)
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in line)
