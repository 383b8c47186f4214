"""The one way services open Redis: bytes in, bytes out (bodies are raw octets), with sane timeouts.

Single commands ride over a dropped connection with a couple of quick retries: the commands the services
send one by one are reads or idempotent writes (SET, SADD, XACK, XCLAIM, scripts that check before they
write), so sending one twice is harmless.

A transaction (`pipeline(transaction=True)`, MULTI ... EXEC) is never re-sent. If the connection drops
after EXEC went out, Redis may have committed it and only the reply was lost; re-sending would commit it
a second time (the same message enqueued twice, two entries racing for one delivery). So transactions go
over a second connection pool whose connections do not retry: the caller gets the error and decides (the
SMTP session answers 451, a consumer leaves its entry pending), like any lost reply.
"""

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class TransactionSafeRedis(Redis):
    """A Redis client whose MULTI/EXEC transactions use their own pool of connections without retries."""

    def __init__(self, *, connection_pool: ConnectionPool, transaction_pool: ConnectionPool) -> None:
        super().__init__(connection_pool=connection_pool)
        self.auto_close_connection_pool = True
        self.transaction_pool = transaction_pool

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pool = self.transaction_pool if transaction else self.connection_pool
        return Pipeline(pool, self.response_callbacks, transaction, shard_hint)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if close_connection_pool is not False:
            await self.transaction_pool.aclose()


def connect(url: str, *, socket_timeout: float = 10.0) -> Redis:
    common = {
        "decode_responses": False,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 2.0,
        "health_check_interval": 30,
    }
    # A real outage surfaces as an error fast, so SMTP can answer 451 instead of hanging the client.
    commands = ConnectionPool.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        **common,
    )
    transactions = ConnectionPool.from_url(url, retry=Retry(NoBackoff(), retries=0), **common)
    return TransactionSafeRedis(connection_pool=commands, transaction_pool=transactions)
