"""Every use of aiosmtplib's private names, in one place: command pipelining (RFC 2920).

aiosmtplib (pinned `>=5.1,<6` in pyproject.toml) sends one command and reads one reply at a time, and
its protocol drops whatever arrives while no command waits for a reply: replies to pipelined commands
would be lost. `pipelined` writes several commands in one write (one TLS record, one system call) and
collects exactly one reply per command from the protocol's own buffer and response parser, with the
protocol's command lock held so nothing else talks on the connection meanwhile. A lost connection, an
EOF or a timeout raises like aiosmtplib's own commands do (`SMTPServerDisconnected`,
`SMTPReadTimeoutError`); the caller then closes the connection, whose state is unknown.

The private names used: `SMTPProtocol._command_lock`, `._buffer`, `._read_response_from_buffer`,
`._response_waiter` (failed by aiosmtplib when the connection is lost), `._response_pending`.
tests/integration/relay/test_pipelining.py runs this against real servers.
"""

import asyncio
import re

from aiosmtplib import SMTP, SMTPReadTimeoutError, SMTPResponse, SMTPResponseException, SMTPServerDisconnected
from aiosmtplib.protocol import normalize_message_line_endings

MAX_REPLIES_BUFFER = 64 * 1024
"""Replies to one pipelined group are a few lines each: more than this is a broken or hostile server."""

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def command(*parts: bytes) -> bytes:
    """One command line; like aiosmtplib, refuse control characters (CR/LF would inject commands)."""
    for part in parts:
        if _CONTROL.search(part):
            raise ValueError("Command arg contains a prohibited control character")
    return b" ".join(parts) + b"\r\n"


def data_payload(message: bytes) -> bytes:
    """The message as DATA sends it, in one buffer: CRLF line endings, dot-stuffed, ended by `.`."""
    return _LEADING_DOT.sub(b"..", normalize_message_line_endings(message)) + b".\r\n"


async def pipelined(smtp: SMTP, payload: bytes, replies: int, wait_s: float | None) -> list[SMTPResponse]:
    """Write `payload` (`replies` commands, or a message ending in `.`) at once; one reply per command."""
    protocol = smtp.protocol
    if protocol is None or protocol._command_lock is None or not protocol.is_connected:
        raise SMTPServerDisconnected("Server not connected")
    done: asyncio.Future[list[SMTPResponse]] = asyncio.get_running_loop().create_future()
    got: list[SMTPResponse] = []

    def fail(exc: Exception) -> None:
        done.set_exception(exc)
        done.exception()  # retrieved: nobody may await it once the caller has gone

    def data_received(data: bytes) -> None:
        if done.done():
            return
        protocol._buffer.extend(data)
        if len(protocol._buffer) > MAX_REPLIES_BUFFER:
            fail(SMTPResponseException(-1, "Response too long"))
            return
        try:
            while len(got) < replies and (response := protocol._read_response_from_buffer()) is not None:
                got.append(response)
        except SMTPResponseException as exc:
            fail(exc)
            return
        if len(got) == replies:
            done.set_result(got)

    async with protocol._command_lock:
        lost = protocol._response_waiter  # aiosmtplib fails it when the connection is lost
        if lost is None:
            raise SMTPServerDisconnected("Server not connected")
        protocol._response_pending = True
        protocol.data_received = data_received  # type: ignore[method-assign]  # this group's replies
        try:
            protocol.write(payload)
            finished, _ = await asyncio.wait(
                {done, lost}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
            )
            if done in finished:
                return done.result()
            if lost in finished:
                lost.result()  # raises SMTPServerDisconnected
                raise SMTPServerDisconnected("Connection lost")
            raise SMTPReadTimeoutError("Timed out waiting for server response")
        finally:
            del protocol.data_received
            protocol._response_pending = False
            if not done.done():
                done.cancel()
