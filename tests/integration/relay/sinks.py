"""SMTP receivers the relay delivers to: real aiosmtpd servers on loopback addresses, recording what they got.

A sink can be told to answer RCPT for an address with a list of replies (one per attempt, then 250), to
answer DATA with a list of replies, to stall in DATA (answer only after `stall_seconds`) for its first N
messages, or to hang up when a connection that already carried a message starts another (`hang_up_on_reuse`);
it can leave SMTPUTF8 (the default) or 8BITMIME out of its EHLO reply, or offer PIPELINING (RFC 2920; aiosmtpd
reads pipelined commands in order but does not advertise it) and record each chunk of input as it arrived.
Each message records the connection it came on (`peer`: the relay's address and port).
"""

import asyncio
import ssl
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    helo: str | None
    mail_options: list[str]
    tls: bool
    peer: tuple[str, int]


@dataclass
class SinkBehaviour:
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    stall_data: int = 0
    stall_seconds: float = 3600.0
    hang_up_on_reuse: bool = False
    smtputf8: bool = False
    """Advertise SMTPUTF8 (aiosmtpd's default is not to)."""
    eight_bit_mime: bool = True
    """Advertise 8BITMIME (aiosmtpd always does; False takes it out of the EHLO reply)."""
    pipelining: bool = False
    """Advertise PIPELINING."""


class SinkHandler:
    def __init__(self, behaviour: SinkBehaviour) -> None:
        self.behaviour = behaviour
        self.messages: list[Received] = []
        self.rcpt_log: list[tuple[str, str]] = []
        self.stalled = threading.Event()
        self.lock = threading.Lock()
        self.transactions: dict[tuple[str, int], int] = {}  # per connection (peer), MAIL commands seen
        self.quits = 0
        self.hang_ups = 0
        self.chunks: list[bytes] = []  # input as it arrived (plain text, inside TLS too)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.behaviour.pipelining:
            responses = [responses[0], "250-PIPELINING", *responses[1:]]
        if self.behaviour.eight_bit_mime:
            return responses
        return [line for line in responses if line[4:].upper() != "8BITMIME"]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        peer = tuple(session.peer)
        with self.lock:
            seen = self.transactions.get(peer, 0)
            self.transactions[peer] = seen + 1
            hang_up = self.behaviour.hang_up_on_reuse and seen > 0
            self.hang_ups += hang_up
        if hang_up:
            server.transport.close()  # as if the connection had died while the relay kept it idle
            return "421 4.4.2 gone"  # never arrives
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.quits += 1
        return "221 Bye"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            replies = self.behaviour.rcpt_replies.get(address)
            reply = replies.pop(0) if replies else "250 2.1.5 Ok"
            self.rcpt_log.append((address, reply))
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            stall = self.behaviour.stall_data > 0
            self.behaviour.stall_data -= 1 if stall else 0
            reply = (
                self.behaviour.data_replies.pop(0) if self.behaviour.data_replies else "250 2.0.0 Ok: queued"
            )
        if stall:
            self.stalled.set()
            await asyncio.sleep(self.behaviour.stall_seconds)  # the relay is stopped or killed meanwhile
        if reply.startswith("250"):
            with self.lock:
                self.messages.append(
                    Received(
                        mail_from=envelope.mail_from,
                        rcpt_tos=list(envelope.rcpt_tos),
                        content=envelope.original_content or b"",
                        helo=session.host_name,
                        mail_options=list(envelope.mail_options),
                        tls=session.ssl is not None,
                        peer=tuple(session.peer),
                    )
                )
        return reply


class RecordingSMTP(SMTP):
    def data_received(self, data: bytes) -> None:
        with self.event_handler.lock:
            self.event_handler.chunks.append(data)
        super().data_received(data)


class RecordingController(Controller):
    def factory(self) -> SMTP:
        return RecordingSMTP(self.handler, **self.SMTP_kwargs)


class Sink:
    """One receiver at `address:port`."""

    def __init__(
        self,
        address: str,
        port: int,
        behaviour: SinkBehaviour | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.address = address
        self.port = port
        self.handler = SinkHandler(behaviour or SinkBehaviour())
        self.controller = RecordingController(
            self.handler,
            hostname=address,
            port=port,
            ready_timeout=10,
            tls_context=tls_context,
            require_starttls=False,
            enable_SMTPUTF8=self.handler.behaviour.smtputf8,
        )

    def start(self) -> "Sink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def connections(self) -> set[tuple[str, int]]:
        """The connections (relay address and port) that brought messages."""
        return {message.peer for message in self.messages}

    @property
    def chunks(self) -> list[bytes]:
        with self.handler.lock:
            return list(self.handler.chunks)

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def wait_for_messages(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.05)
        raise TimeoutError(f"sink {self.address}: {len(self.messages)} messages, wanted {count}")
