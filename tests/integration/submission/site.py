"""Helpers for the reception tests: a small real site (Redis, auth service, reception processes),
reading what landed in the streams, and a raw-socket SMTP client for what real clients refuse to send."""

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from shared.streams import LOCAL_DELIVERY, OUTBOUND, TRACE
from tests.fixtures.auth import AuthService
from tests.fixtures.ports import free_port
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.tls import self_signed_certificate

HOST = "127.0.0.1"
DOMAIN = "alpha.test"
REMOTE_DOMAIN = "remote.example"
PASSWORD = "correct horse battery"

# Cheap password hashes: the tests log in often and hashing cost is not what they test.
FAST_AUTH = {
    "YUBIN_AUTH_ARGON2_TIME_COST": "1",
    "YUBIN_AUTH_ARGON2_MEMORY_KIB": "8",
    "YUBIN_AUTH_ARGON2_PARALLELISM": "1",
}


@dataclass
class Reception:
    """One running `services.submission` process."""

    role: str
    host: str
    port: int
    process: ServiceProcess
    env: dict[str, str]


@dataclass
class Certificate:
    cert: Path
    key: Path


def make_certificate(directory: Path) -> Certificate:
    """A self-signed certificate for localhost / 127.0.0.1 (the tests do not verify it)."""
    cert, key = self_signed_certificate(directory)
    return Certificate(cert=cert, key=key)


def base_env(auth: AuthService, redis_url: str, certificate: Certificate | None) -> dict[str, str]:
    env = {
        **auth.env,
        "YUBIN_REDIS_URL": redis_url,
        "YUBIN_HOSTNAME": "mail.alpha.test",
        "YUBIN_AUTH_TIMEOUT_S": "2",
        "YUBIN_LOCAL_DOMAINS_REFRESH_S": "1",
        # The auth client's cache on top (tests of a user change wait it out; see test_mx).
        "YUBIN_AUTH_CACHE_TTL_S": "0.5",
        "YUBIN_IDLE_TIMEOUT_S": "20",
        "YUBIN_SESSION_TIMEOUT_S": "60",
        "YUBIN_SHUTDOWN_GRACE_S": "5",
        "YUBIN_LOG_LEVEL": "INFO",
    }
    if certificate is not None:
        env["YUBIN_TLS_CERT_FILE"] = str(certificate.cert)
        env["YUBIN_TLS_KEY_FILE"] = str(certificate.key)
    return env


def start_reception(
    factory: Callable[..., ServiceProcess],
    role: str,
    env: dict[str, str],
    *,
    host: str = HOST,
    **overrides: str,
) -> Reception:
    port = free_port()
    full = {
        **env,
        "YUBIN_SMTP_ROLE": role,
        "YUBIN_SMTP_HOST": host,
        "YUBIN_SMTP_PORT": str(port),
        **overrides,
    }
    process = factory("services.submission", full, wait_port=(host, port), name=role)
    return Reception(role=role, host=host, port=port, process=process, env=full)


@dataclass
class Site:
    redis: RedisServer
    auth: AuthService
    certificate: Certificate
    factory: Callable[..., ServiceProcess]
    users: dict[str, str] = field(default_factory=dict)

    def client(self) -> redis.Redis:
        return self.redis.client()

    def start(self, role: str, *, host: str = HOST, **overrides: str) -> Reception:
        return start_reception(
            self.factory, role, base_env(self.auth, self.redis.url, self.certificate), host=host, **overrides
        )

    def add_user(self, address: str, password: str = PASSWORD) -> str:
        self.auth.add_user(address, password)
        self.users[address] = password
        return address


def stream_envelopes(client: redis.Redis, stream: str) -> list[dict]:
    """The envelopes published on a stream, as dicts."""
    return [json.loads(fields[b"data"]) for _id, fields in client.xrange(stream)]


def all_envelopes(client: redis.Redis) -> dict[str, list[dict]]:
    return {
        "local": stream_envelopes(client, LOCAL_DELIVERY),
        "outbound": stream_envelopes(client, OUTBOUND),
        "trace": stream_envelopes(client, TRACE),
    }


def body_of(client: redis.Redis, envelope: dict) -> bytes:
    body = client.get(f"yubin:body:{envelope['body_id']}")
    assert body is not None
    return body


class RawSmtp:
    """A client that sends exactly the bytes it is given (for smuggling, pipelining, garbage)."""

    def __init__(self, host: str, port: int, *, source: str | None = None, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None
        )
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawSmtp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        """One reply line without CRLF; b"" when the server closed the connection."""
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                rest, self.buffer = self.buffer, b""
                return rest
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def reply(self) -> str:
        """A whole (possibly multi-line) reply, lines joined with \\n; "" at EOF."""
        lines = []
        while True:
            line = self.read_line().decode("utf-8", "replace")
            if not line:
                return "\n".join(lines)
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)

    def command(self, line: str | bytes) -> str:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def at_eof(self) -> bool:
        """True once the server has closed the connection (after reading what it still sent)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
