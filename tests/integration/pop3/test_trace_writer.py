"""POP3's trace writer on a real Redis: events are queued, written together shortly after, in order, and
`flush` writes everything queued before it returns (what QUIT relies on for its deletions)."""

import asyncio
import json

import redis.asyncio

from services.pop3.trace import MessageIds, TraceWriter, event
from shared.streams import TRACE
from tests.integration.pop3.conftest import Pop3Site


def events_named(entries: list[tuple[bytes, dict[bytes, bytes]]], uid_prefix: str) -> list[tuple[str, str]]:
    """(event, uid) of the entries this test wrote, in stream order."""
    found = []
    for _, fields in entries:
        data = json.loads(fields[b"data"])
        if str(data["detail"].get("uid", "")).startswith(uid_prefix):
            found.append((data["event"], data["detail"]["uid"]))
    return found


def test_events_are_written_later_together_and_in_order(site: Pop3Site) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(site.redis_url)
        writer = TraceWriter(client, linger_s=0.05)
        prefix = f"w{id(writer):x}-"
        ids = MessageIds("Q1", "<1@x>")
        # Two sessions' events, as RETRs add them: nothing waits for Redis.
        for n in range(3):
            writer.add([event(ids, "retrieved", {"uid": f"{prefix}a{n}"})])
            writer.add([event(ids, "retrieved", {"uid": f"{prefix}b{n}"})])
        # Without a flush, they are written within the linger.
        for _ in range(600):
            written = events_named(await client.xrange(TRACE), prefix)
            if len(written) == 6:
                break
            await asyncio.sleep(0.05)
        assert [uid for _, uid in written] == [f"{prefix}{s}{n}" for n in range(3) for s in "ab"]
        # A flush returns once everything added before it is in the stream, in the order added.
        writer.add([event(ids, "deleted", {"uid": f"{prefix}a0"})])
        writer.add([event(ids, "deleted", {"uid": f"{prefix}b0"})])
        await writer.flush()
        written = events_named(await client.xrange(TRACE), prefix)
        assert written[6:] == [("deleted", f"{prefix}a0"), ("deleted", f"{prefix}b0")]
        await writer.aclose()
        await client.aclose()

    asyncio.run(scenario())
