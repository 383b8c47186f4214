"""Which handler failures are outages (retried for as long as they last) and which are not (dead letters)."""

import dns.exception
import dns.resolver
import httpx
import pytest
from pydantic import ValidationError
from redis.exceptions import BusyLoadingError, ExecAbortError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.auth_client import AuthUnavailable
from shared.models import Envelope
from shared.outages import describe, is_outage
from shared.redis_client import NotReplicated


def validation_error() -> ValidationError:
    try:
        Envelope.model_validate_json(b"{}")
    except ValidationError as exc:
        return exc
    raise AssertionError("an empty envelope validated")


@pytest.mark.parametrize(
    "exc",
    [
        AuthUnavailable("auth service unreachable"),
        RedisConnectionError("Connection refused"),
        RedisTimeoutError("Timeout reading from socket"),
        BusyLoadingError("Redis is loading the dataset in memory"),
        ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
        ExecAbortError("EXECABORT Transaction discarded because of: OOM command not allowed"),
        # A replicated Redis (docs/ha.md): refused inside MULTI, as redis-py annotates it; WAIT fell short.
        ResponseError(
            "Command # 1 (SET yubin:body:1 x) of pipeline caused error: "
            "('NOREPLICAS Not enough good replicas to write.',)"
        ),
        NotReplicated("transaction acknowledged by 0 of 1 replicas within 2000 ms"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        OSError(28, "No space left on device"),
        httpx.ConnectTimeout("timed out"),
        dns.exception.Timeout(),
        dns.resolver.NoNameservers(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages(exc: BaseException) -> None:
    assert is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("queue_id"),
        ValueError("bad"),
        ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ResponseError(
            "Command # 2 (XADD s * a b) of pipeline caused error: ('WRONGTYPE Operation against a key',)"
        ),
        validation_error(),
        AssertionError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_not_outages(exc: BaseException) -> None:
    assert not is_outage(exc)


def test_the_explicit_cause_counts_but_not_the_context() -> None:
    wrapped = RuntimeError("lookup failed")
    wrapped.__cause__ = RedisConnectionError("gone")
    assert is_outage(wrapped)

    bug = AttributeError("no such attribute")  # a bug in an except block that handled an outage
    bug.__context__ = RedisConnectionError("gone")
    assert not is_outage(bug)


def test_describe_names_the_class_when_there_is_no_text() -> None:
    assert describe(httpx.ReadTimeout("")) == "ReadTimeout"
    assert describe(KeyError("x")) == "KeyError: 'x'"
