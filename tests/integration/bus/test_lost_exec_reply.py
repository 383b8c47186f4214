"""A transaction whose EXEC committed but whose reply was lost is not sent again by the Redis client.

Between the client and a real redis-server sits a proxy that forwards EXEC, lets Redis answer, and cuts the
connection before the answer reaches the client. The enqueue fails (the SMTP session answers 451), and
exactly one copy of the message exists: the client's own retry, under a new queue id, is the SMTP
client's business (see docs/architecture.md).
"""

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.enqueue import enqueue
from shared.models import Envelope
from shared.redis_client import connect
from shared.streams import LOCAL_DELIVERY, OUTBOUND
from tests.fixtures.lost_reply_proxy import LostExecReplyProxy


async def test_a_lost_exec_reply_is_not_retried(redis_server, redis_url: str) -> None:
    direct = connect(redis_url)
    envelope = Envelope(sender="alice@alpha.test", recipients=["bob@beta.test"], body_id="-")
    async with LostExecReplyProxy(redis_server.host, redis_server.port) as proxy:
        redis = connect(proxy.url)
        try:
            assert await redis.ping()  # single commands go through the proxy untouched
            with pytest.raises(RedisConnectionError):
                await enqueue(
                    redis, b"Subject: once\r\n\r\nbody\r\n", {LOCAL_DELIVERY: envelope, OUTBOUND: envelope}
                )
            assert proxy.cuts == 1
            # The client still works afterwards (a fresh connection, nothing replayed on it).
            assert await redis.ping()
        finally:
            await redis.aclose()
    try:
        assert await direct.xlen(LOCAL_DELIVERY) == 1
        assert await direct.xlen(OUTBOUND) == 1
        bodies = [k async for k in direct.scan_iter(match="yubin:body:*") if not k.endswith(b":holders")]
        assert len(bodies) == 1
    finally:
        await direct.aclose()
