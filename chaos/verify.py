"""After the run: wait until both sites' queues are empty, then read every Maildir file on disk.

Drained means, in each site's Redis: every stream entry read by its group and acknowledged (last delivered
id = the stream's last id, nothing pending) and the relay's and delivery's deferred sets empty.
"""

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from shared.streams import DEAD_LETTER, DELIVERY_GROUP, LOCAL_DELIVERY, OUTBOUND, RELAY_GROUP

DEFERRED_SETS = ("yubin:relay:retry", "yubin:delivery:deferred")
STREAM_GROUPS = ((LOCAL_DELIVERY, DELIVERY_GROUP), (OUTBOUND, RELAY_GROUP))
MESSAGE_ID = re.compile(rb"^message-id:[ \t]*<([^>\r\n]+)>", re.I | re.M)
REPORT = re.compile(rb"^content-type:[ \t]*multipart/report", re.I | re.M)


def backlog(client: redis.Redis) -> dict[str, int]:
    """What is still to do in one site: unread and pending entries per stream, deferred envelopes."""
    left: dict[str, int] = {}
    for stream, group in STREAM_GROUPS:
        if not client.exists(stream):
            continue
        last_id = client.xinfo_stream(stream)["last-generated-id"]
        for info in client.xinfo_groups(stream):
            if info["name"] == group:
                unread = info["last-delivered-id"] != last_id
                left[f"{stream} unread"] = int(unread)
                left[f"{stream} pending"] = info["pending"]
    for key in DEFERRED_SETS:
        left[key] = client.zcard(key)
    return {key: value for key, value in left.items() if value}


def wait_drained(redis_urls: list[str], timeout: float) -> tuple[bool, dict[str, dict[str, int]]]:
    """True once every site has had nothing left twice in a row (a restarted consumer may still be
    reclaiming); else False and what was left at the deadline."""
    deadline = time.monotonic() + timeout
    clients = {url: redis.Redis.from_url(url, socket_timeout=5, decode_responses=True) for url in redis_urls}
    quiet = 0
    left: dict[str, dict[str, int]] = {}
    while time.monotonic() < deadline:
        try:
            left = {url: b for url, client in clients.items() if (b := backlog(client))}
        except redis.RedisError as exc:
            left = {"redis": {str(exc): 1}}
        quiet = quiet + 1 if not left else 0
        if quiet >= 2:
            return True, {}
        time.sleep(1.0)
    return False, left


def dead_letters(redis_url: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(redis_url, socket_timeout=5, decode_responses=True)
    return [fields for _, fields in client.xrange(DEAD_LETTER)]


@dataclass
class Mailboxes:
    copies: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(mailbox address, Message-ID) -> number of files."""
    dsns: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(mailbox address, Message-ID of the bounced message) -> number of DSNs naming it."""
    foreign: list[str] = field(default_factory=list)
    """Files that are neither one of our messages nor a DSN about one."""


def read_mailboxes(mail_roots: list[Path], our_ids: re.Pattern[bytes]) -> Mailboxes:
    boxes = Mailboxes()
    for root in mail_roots:
        for path in sorted(root.glob("*/*/new/*")) + sorted(root.glob("*/*/cur/*")):
            owner = f"{path.parents[1].name}@{path.parents[2].name}"
            data = path.read_bytes()
            head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
            if REPORT.search(head):
                named = set(our_ids.findall(data))
                for message_id in named:
                    boxes.dsns[(owner, message_id.decode())] += 1
                if not named:
                    boxes.foreign.append(str(path))
                continue
            found = MESSAGE_ID.search(head)
            if found and our_ids.fullmatch(found.group(1)):
                boxes.copies[(owner, found.group(1).decode())] += 1
            else:
                boxes.foreign.append(str(path))
    return boxes
