"""The POP3 listener: accepts connections, enforces the connection limits, runs one session per connection
and shuts down gracefully (stop accepting, let commands in progress finish, then cut what is left).

Behind a front (HAProxy), a connection from a front YUBIN_PROXY_PROTOCOL_FROM trusts begins with a PROXY v2
header (`shared.proxy_protocol`): its client address is the session's, for the per-address cap, login
throttling (the auth service gets it) and the logs. Anyone else who sends such a header is closed."""

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections import Counter

from services.pop3 import responses as R
from services.pop3.session import Pop3Session, SessionEnv
from services.pop3.wire import response
from shared.config.pop3 import Pop3Settings
from shared.log import log_context
from shared.proxy_protocol import FirstOctets, ProxyHeaderError, read_header
from shared.tls import server_tls_context

log = logging.getLogger(__name__)


def tls_context(settings: Pop3Settings) -> ssl.SSLContext | None:
    """The server-side TLS context for STLS, or None when no certificate is configured."""
    return server_tls_context(settings.pop3_tls_cert, settings.pop3_tls_key)


class Pop3Connection(asyncio.StreamReaderProtocol):
    """What `asyncio.start_server` would make for each connection, plus a look at the first octets from an
    address that is not a trusted front: a PROXY header from it closes the connection before the session
    reads any of it."""

    def __init__(self, server: "Pop3Server") -> None:
        # The reader's limit bounds every line; the longest we accept is an AUTH line.
        super().__init__(asyncio.StreamReader(limit=server.settings.pop3_max_auth_line), server._handle)
        self._fronts = server.fronts
        self._first_octets: FirstOctets | None = None
        self._connection: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._connection = transport
        peer = transport.get_extra_info("peername")
        if self._fronts and not (peer and str(peer[0]) in self._fronts):
            self._first_octets = FirstOctets()
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._first_octets is not None and self._first_octets.header_seen(data):
            assert self._connection is not None
            peer = self._connection.get_extra_info("peername")
            log.warning(
                "connection refused: PROXY header from an address that is not a trusted front",
                extra={"client_ip": str(peer[0]) if peer else "unknown"},
            )
            self._first_octets = None
            self._connection.close()
            return
        super().data_received(data)


class Pop3Server:
    def __init__(self, env: SessionEnv) -> None:
        self.env = env
        self.settings = env.settings
        self.fronts = env.settings.proxy_fronts
        self._sessions: set[asyncio.Task[None]] = set()
        self._per_ip: Counter[str] = Counter()
        self._ids = itertools.count(1)

    async def serve(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Pop3Connection(self), self.settings.pop3_host, self.settings.pop3_port
        )
        log.info(
            "listening",
            extra={
                "host": self.settings.pop3_host,
                "port": self.settings.pop3_port,
                "stls": self.env.tls is not None,
                "plaintext_auth": self.settings.pop3_allow_plaintext_auth,
                "proxy_protocol_from": self.settings.proxy_protocol_from or None,
            },
        )
        if self.env.tls is None and not self.settings.pop3_allow_plaintext_auth:
            log.warning("neither STLS nor plaintext auth is enabled: nobody can log in")
        async with server:
            await stop.wait()
            server.close()
            await self._drain_sessions()
        log.info("stopped")

    async def _drain_sessions(self) -> None:
        """Sessions waiting for a command end at once with [SYS/TEMP]; a command in progress gets the
        grace period. A session cut short never reaches UPDATE, so nothing is half-deleted."""
        self.env.stopping.set()
        if not self._sessions:
            return
        log.info("waiting for sessions", extra={"sessions": len(self._sessions)})
        _, pending = await asyncio.wait(set(self._sessions), timeout=self.settings.pop3_shutdown_grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]) if peer else "unknown"
        if client_ip in self.fronts:
            try:
                header = await read_header(reader, self.settings.proxy_protocol_timeout_s)
            except ProxyHeaderError as exc:
                log.warning(
                    "connection refused: bad PROXY header", extra={"front": client_ip, "error": str(exc)}
                )
                await self._close(writer)
                return
            if header.client is not None:  # LOCAL (the front's health check): the front is the client
                client_ip = header.client[0]
        task = asyncio.current_task()
        assert task is not None
        with log_context(session=f"pop3-{next(self._ids)}", client_ip=client_ip):
            if self.env.stopping.is_set():
                await self._refuse(writer, R.ERR_SHUTDOWN)
                return
            if self._over_limit(client_ip):
                log.warning("connection refused: too many connections")
                await self._refuse(writer, R.ERR_TOO_MANY_CONNECTIONS)
                return
            self._sessions.add(task)
            self._per_ip[client_ip] += 1
            log.debug("connected", extra={"connections": len(self._sessions)})
            session = Pop3Session(reader, writer, self.env, client_ip)
            try:
                await session.run()
            finally:
                self._sessions.discard(task)
                self._per_ip[client_ip] -= 1
                if self._per_ip[client_ip] <= 0:
                    del self._per_ip[client_ip]
                # Health checks connect and leave without a word every few seconds: not worth an INFO line.
                level = logging.INFO if session.commands else logging.DEBUG
                log.log(level, "disconnected", extra={"commands": session.commands})

    def _over_limit(self, client_ip: str) -> bool:
        return (
            len(self._sessions) >= self.settings.pop3_max_connections
            or self._per_ip[client_ip] >= self.settings.pop3_max_connections_per_ip
        )

    @staticmethod
    async def _refuse(writer: asyncio.StreamWriter, answer: str) -> None:
        """An -ERR greeting (RFC 2449 response codes apply to it too), then close."""
        with contextlib.suppress(ConnectionError, TimeoutError):
            writer.write(response(answer))
            await asyncio.wait_for(writer.drain(), 5)
        await Pop3Server._close(writer)

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
