"""The one way services open Redis: bytes in, bytes out (bodies are raw octets), with sane timeouts."""

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def connect(url: str, *, socket_timeout: float = 10.0) -> Redis:
    # A couple of quick retries ride over a dropped connection; a real outage surfaces as an error
    # fast, so SMTP can answer 451 instead of hanging the client.
    return Redis.from_url(
        url,
        decode_responses=False,
        socket_timeout=socket_timeout,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
