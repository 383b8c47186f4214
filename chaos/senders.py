"""Senders that behave like real mail clients: submit over SMTP, retry whatever was not acknowledged.

Each logical message has its own Message-ID. A sender keeps one authenticated session and submits its
messages one after the other; on any error (connection refused or dropped, timeout, a 4xx/5xx reply) it
drops the session, waits a little and submits the same message again to the recipients that have not yet
been accepted. When the `250` after DATA was lost the message may already be queued: the retry then
legitimately enters the lab twice, and the delivery's Message-ID duplicate suppression must absorb it.
"""

import poplib
import random
import smtplib
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate


@dataclass
class Planned:
    number: int
    sender: str
    recipients: list[str]
    message_id: str
    bounces: list[str] = field(default_factory=list)
    """Recipients that do not exist at the remote site: the sender must get one DSN for them."""
    accepted: set[str] = field(default_factory=set)
    """Recipients for which the submission service answered 250 (at RCPT, then at end of DATA)."""
    attempts: int = 0
    content: bytes | None = None

    def data(self) -> bytes:
        """The message, the same bytes on every attempt: a real client resends what is in its outbox."""
        if self.content is None:
            to = ", ".join(self.recipients)
            self.content = (
                f"From: {self.sender}\r\nTo: {to}\r\nSubject: chaos {self.number}\r\n"
                f"Message-ID: <{self.message_id}>\r\nDate: {formatdate()}\r\n\r\n"
                f"Chaos message {self.number} from {self.sender}.\r\n"
            ).encode()
        return self.content

    @property
    def pending(self) -> list[str]:
        return [rcpt for rcpt in self.recipients if rcpt not in self.accepted]


def plan(
    seed: int, count: int, users: list[str], bounce_share: float, run_tag: str
) -> dict[str, list[Planned]]:
    """The messages of each sender: 1-3 recipients among all users (local and remote), a few with an
    unknown remote recipient."""
    rng = random.Random(seed * 7919 + 1)
    by_sender: dict[str, list[Planned]] = {user: [] for user in users}
    for number in range(count):
        sender = users[number % len(users)]
        recipients = rng.sample([u for u in users if u != sender], rng.randint(1, 3))
        bounces = []
        if rng.random() < bounce_share:
            remote = next(u for u in users if u.rpartition("@")[2] != sender.rpartition("@")[2])
            bounces = [f"nobody-{number}@{remote.rpartition('@')[2]}"]
        message_id = f"chaos.{run_tag}.{number}@{sender.rpartition('@')[2]}"
        by_sender[sender].append(Planned(number, sender, recipients + bounces, message_id, bounces))
    return by_sender


@dataclass
class SenderStats:
    sessions: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, exc: BaseException) -> None:
        key = type(exc).__name__
        if isinstance(exc, smtplib.SMTPResponseException):
            key = f"{key} {exc.smtp_code}"
        self.errors[key] = self.errors.get(key, 0) + 1


class Sender(threading.Thread):
    def __init__(
        self,
        address: str,
        password: str,
        server: tuple[str, int],
        messages: list[Planned],
        deadline: float,
        interval_s: float = 0.0,
    ) -> None:
        super().__init__(name=f"sender-{address}", daemon=True)
        self.address = address
        self.password = password
        self.server = server
        self.messages = messages
        self.deadline = deadline
        self.stats = SenderStats()
        self.rng = random.Random(address)
        self.interval_s = interval_s
        """Earliest time between the starts of two messages: spreads the traffic over the fault schedule."""

    def run(self) -> None:
        smtp: smtplib.SMTP | None = None
        start = time.monotonic()
        for index, message in enumerate(self.messages):
            if (wait := start + index * self.interval_s - time.monotonic()) > 0:
                time.sleep(wait)
            while message.pending and time.monotonic() < self.deadline:
                message.attempts += 1
                try:
                    if smtp is None:
                        smtp = smtplib.SMTP(*self.server, timeout=15)
                        smtp.login(self.address, self.password)
                        self.stats.sessions += 1
                    refused = smtp.sendmail(self.address, message.pending, message.data())
                    message.accepted |= set(message.pending) - set(refused)
                    if refused:  # some recipients got 4xx at RCPT: the others are queued; retry these
                        raise smtplib.SMTPRecipientsRefused(refused)
                except (smtplib.SMTPException, OSError) as exc:
                    self.stats.error(exc)
                    smtp = close(smtp)
                    time.sleep(self.rng.uniform(0.1, 0.5))
        close(smtp)


def close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


class Pop3Poller(threading.Thread):
    """Reads (never deletes) a maildrop over and over, so killing POP3 hits live sessions."""

    def __init__(self, address: str, password: str, server: tuple[str, int], done: threading.Event) -> None:
        super().__init__(name=f"pop3-{address}", daemon=True)
        self.address, self.password, self.server, self.done = address, password, server, done
        self.sessions = 0
        self.errors = 0

    def run(self) -> None:
        while not self.done.wait(0.5):
            try:
                pop = poplib.POP3(*self.server, timeout=10)
                try:
                    pop.user(self.address)
                    pop.pass_(self.password)
                    count, _ = pop.stat()
                    pop.uidl()
                    if count:
                        pop.retr(count)
                    self.sessions += 1
                finally:
                    pop.quit()
            except (poplib.error_proto, OSError):
                self.errors += 1
