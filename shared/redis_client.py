"""The one way services open Redis: bytes in, bytes out (bodies are raw octets), with sane timeouts.

Single commands ride over a dropped connection with a couple of quick retries: the commands the services
send one by one are reads or idempotent writes (SET, SADD, XACK, XCLAIM, scripts that check before they
write), so sending one twice is harmless.

A transaction (`pipeline(transaction=True)`, MULTI ... EXEC) is never re-sent. If the connection drops
after EXEC went out, Redis may have committed it and only the reply was lost; re-sending would commit it
a second time (the same message enqueued twice, two entries racing for one delivery). So transactions go
over a second connection pool whose connections do not retry: the caller gets the error and decides (the
SMTP session answers 451, a consumer leaves its entry pending), like any lost reply.

Replicated Redis (docs/ha.md): with `YUBIN_REDIS_SENTINELS` both pools ask Sentinel for the current
primary on every new connection, so after a failover the next connection goes to the promoted replica
(redis-py also drops a connection that meets READONLY from a demoted primary). With
`YUBIN_REDIS_MIN_REPLICAS_ACK` > 0 every transaction is followed, on the same connection, by
`WAIT <n> <timeout>`: its reply comes back only once n replicas have the transaction, and fewer raise
`NotReplicated` (an outage: SMTP answers 451, a consumer retries). A write that must survive a failover
is therefore made a transaction (the accepted message, delivery's duplicate claim and marker, every
consumer's final write with its acknowledgement).

This module is the adapter that touches redis-py's private `Pipeline._execute_transaction` (WAIT must
follow EXEC on the very connection that sent it: Redis counts a client's own writes).
"""

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.config.base import ServiceSettings


class NotReplicated(RedisError):
    """A transaction committed on the primary but fewer replicas than required confirmed it in time.

    It is on the primary's disk and will most likely reach the replicas, but a failover now could lose it:
    the caller must not promise it (no 250), and a consumer treats this as an outage (`shared.outages`)."""


# Commands that never write: a transaction made only of these (a page of the user list and its count) has
# nothing to wait for, and must not fail while a replica is away. Anything not listed counts as a write.
_READS = frozenset(
    {"GET", "MGET", "EXISTS", "STRLEN", "TTL", "PTTL", "TYPE", "HGET", "HMGET", "HGETALL", "HEXISTS", "HLEN"}
    | {"SMEMBERS", "SISMEMBER", "SCARD", "ZRANGE", "ZRANGEBYSCORE", "ZCARD", "ZSCORE", "ZCOUNT"}
    | {"XLEN", "XRANGE", "XREVRANGE", "XPENDING", "XINFO"}
)


def _writes(commands) -> bool:
    for args, _options in commands:
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if name.split(" ", 1)[0].upper() not in _READS:
            return True
    return False


class ReplicatedPipeline(Pipeline):
    """A MULTI/EXEC pipeline that sends WAIT after EXEC on the same connection (see module docstring)."""

    replicas = 0
    wait_timeout_ms = 0

    async def _execute_transaction(  # type: ignore[override]
        self, connection: Connection, commands, raise_on_error
    ):
        response = await super()._execute_transaction(connection, commands, raise_on_error)
        if self.replicas > 0 and _writes(commands):
            await connection.send_command("WAIT", self.replicas, self.wait_timeout_ms)
            acknowledged = int(await connection.read_response())
            if acknowledged < self.replicas:
                raise NotReplicated(
                    f"transaction acknowledged by {acknowledged} of {self.replicas} replicas "
                    f"within {self.wait_timeout_ms} ms"
                )
        return response


class TransactionSafeRedis(Redis):
    """A Redis client whose MULTI/EXEC transactions use their own pool of connections without retries
    (and wait for `replicas` replicas after each, when that is more than 0)."""

    def __init__(
        self,
        *,
        connection_pool: ConnectionPool,
        transaction_pool: ConnectionPool,
        replicas: int = 0,
        wait_timeout_ms: int = 2000,
    ) -> None:
        super().__init__(connection_pool=connection_pool)
        self.auto_close_connection_pool = True
        self.transaction_pool = transaction_pool
        self.replicas = replicas
        self.wait_timeout_ms = wait_timeout_ms

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        if not transaction:
            return Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe = ReplicatedPipeline(self.transaction_pool, self.response_callbacks, transaction, shard_hint)
        pipe.replicas = self.replicas
        pipe.wait_timeout_ms = self.wait_timeout_ms
        return pipe

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if close_connection_pool is not False:
            await self.transaction_pool.aclose()


def _options(socket_timeout: float) -> dict:
    return {
        "decode_responses": False,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 2.0,
        "health_check_interval": 30,
    }


def _command_retry() -> dict:
    # A real outage surfaces as an error fast, so SMTP can answer 451 instead of hanging the client.
    return {
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


def _no_retry() -> dict:
    return {"retry": Retry(NoBackoff(), retries=0)}


def connect(
    url: str, *, socket_timeout: float = 10.0, replicas: int = 0, wait_timeout_ms: int = 2000
) -> Redis:
    """The Redis at `url` (one server, or a primary whose replicas WAIT counts when `replicas` > 0)."""
    common = _options(socket_timeout)
    commands = ConnectionPool.from_url(url, **_command_retry(), **common)
    transactions = ConnectionPool.from_url(url, **_no_retry(), **common)
    return TransactionSafeRedis(
        connection_pool=commands,
        transaction_pool=transactions,
        replicas=replicas,
        wait_timeout_ms=wait_timeout_ms,
    )


def connect_sentinel(
    sentinels: list[tuple[str, int]],
    master: str,
    *,
    url: str = "redis://",
    socket_timeout: float = 10.0,
    replicas: int = 1,
    wait_timeout_ms: int = 2000,
) -> Redis:
    """The current primary of `master` as the Sentinels at `sentinels` know it, followed across failovers.

    `url` contributes only its database number and password (the host comes from Sentinel)."""
    common = _options(socket_timeout)
    target = parse_url(url)
    for key in ("db", "username", "password"):
        if target.get(key) is not None:
            common[key] = target[key]
    # The Sentinels themselves answer fast or not at all: a dead one must not hold up finding the primary.
    manager = Sentinel(sentinels, sentinel_kwargs={"socket_timeout": 1.0, "socket_connect_timeout": 1.0})
    commands = SentinelConnectionPool(master, manager, **_command_retry(), **common)
    transactions = SentinelConnectionPool(master, manager, **_no_retry(), **common)
    return TransactionSafeRedis(
        connection_pool=commands,
        transaction_pool=transactions,
        replicas=replicas,
        wait_timeout_ms=wait_timeout_ms,
    )


def connect_site(settings: ServiceSettings, *, socket_timeout: float = 10.0) -> Redis:
    """The site's Redis as the settings describe it: through Sentinel when YUBIN_REDIS_SENTINELS is set,
    else YUBIN_REDIS_URL; waiting for YUBIN_REDIS_MIN_REPLICAS_ACK replicas after each transaction."""
    sentinels = settings.redis_sentinel_addresses
    replicas = settings.redis_replicas_to_wait
    timeout = settings.redis_replica_ack_timeout_ms
    if sentinels:
        return connect_sentinel(
            sentinels,
            settings.redis_sentinel_master,
            url=settings.redis_url,
            socket_timeout=socket_timeout,
            replicas=replicas,
            wait_timeout_ms=timeout,
        )
    return connect(
        settings.redis_url, socket_timeout=socket_timeout, replicas=replicas, wait_timeout_ms=timeout
    )
