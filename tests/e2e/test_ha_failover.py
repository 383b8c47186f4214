"""A site's replicated Redis (`yubin lab up --ha`, docs/ha.md): failover loses and duplicates nothing that got
a 250, and a primary without a confirmed replica makes submission answer 4xx, never 250.

The lab here is the native lab with `--ha` on free ports (each site: a primary, a replica, three Sentinels,
all real processes); the messages are real SMTP submissions; what arrived is read from the Maildirs.
"""

import os
import signal
import smtplib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.conftest import E2E_SETTINGS, Lab
from tests.e2e.mail import hostport, token, wait_for
from tests.e2e.native_lab import NativeLab
from yubin.lab.ha import MASTER_NAME

ALICE = "alice@alpha.test"
BOB = "bob@beta.test"
COUNT = 120
# A failover takes seconds; a site that still refuses after this never found its new primary.
GIVE_UP_S = 60.0

pytestmark = pytest.mark.native_only


@pytest.fixture(scope="module")
def ha_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeLab]:
    native = NativeLab(tmp_path_factory.mktemp("ha-lab"), E2E_SETTINGS, ha=True)
    try:
        native.start()
        for site in native.config.sites:
            wait_for(
                f"{site.domain}'s Sentinels to know the replica and each other",
                lambda s=site: ready(native, s),
            )
        yield native
    finally:
        native.stop()


def sentinels(native: NativeLab, domain: str) -> list[redis.Redis]:
    site = native.config.site(domain)
    ports = native.config.ha_ports[domain].sentinels
    return [redis.Redis(site.address, port, socket_timeout=2, decode_responses=True) for port in ports]


def ready(native: NativeLab, site: Any) -> bool:
    """Every Sentinel knows a replica and the two other Sentinels: a failover can happen."""
    try:
        for sentinel in sentinels(native, site.domain):
            replicas = [r for r in sentinel.sentinel_slaves(MASTER_NAME) if "s_down" not in r["flags"]]
            if not replicas or len(sentinel.sentinel_sentinels(MASTER_NAME)) < 2:
                return False
    except redis.RedisError:
        return False
    return True


def primary(native: NativeLab, domain: str) -> tuple[str, int] | None:
    for sentinel in sentinels(native, domain):
        try:
            host, port = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
            return host, int(port)
        except (redis.RedisError, TypeError):
            continue
    return None


def lab_of(native: NativeLab) -> Lab:
    return Lab(native.info, native.config.info_file, native)


def maildir_counts(native: NativeLab, domain: str, prefix: str) -> Counter:
    """How often each token starting with `prefix` occurs in the site's Maildirs (new/ and cur/)."""
    mail_root = Path(native.info["sites"][domain]["mail_root"])
    found: Counter = Counter()
    needle = f"X-E2E-Token: {prefix}".encode()
    for path in [*mail_root.glob("**/new/*"), *mail_root.glob("**/cur/*")]:
        data = path.read_bytes()
        start = data.find(needle)
        if start != -1:
            end = data.index(b"\r\n" if b"\r\n" in data[start:] else b"\n", start)
            found[data[start + len("X-E2E-Token: ") : end].decode()] += 1
    return found


class Sender:
    """One SMTP client submitting message after message; a message refused with 4xx (or a dropped
    connection) is counted as not accepted and sent again as a new message (its own token), as a client
    would retry it. A 5xx fails the test: the outage is temporary."""

    def __init__(self, lab: Lab, run: str, recipients: list[str]) -> None:
        self.lab = lab
        self.run = run
        self.recipients = recipients
        self.accepted: list[str] = []
        self.refused: list[str] = []
        self.permanent: list[str] = []
        self.smtp: smtplib.SMTP | None = None

    def connect(self) -> smtplib.SMTP:
        host, port = hostport(self.lab.site("alpha.test")["submission"])
        smtp = smtplib.SMTP(host, port, timeout=30)
        smtp.login(ALICE, self.lab.password(ALICE))
        return smtp

    def send(self, n: int) -> None:
        attempt = 0
        give_up = time.monotonic() + GIVE_UP_S
        while True:
            if time.monotonic() > give_up:
                self.permanent.append(f"message {n}: still refused after {GIVE_UP_S:.0f} s")
                return
            tag = f"{self.run}-{n}-{attempt}"
            message = (
                f"From: {ALICE}\r\nTo: {', '.join(self.recipients)}\r\nSubject: ha {n}\r\n"
                f"Message-ID: <{tag}@alpha.test>\r\nX-E2E-Token: {tag}\r\n\r\nmessage {n}\r\n"
            )
            try:
                if self.smtp is None:
                    self.smtp = self.connect()
                self.smtp.sendmail(ALICE, self.recipients, message.encode())
                self.accepted.append(tag)
                return
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code >= 500:
                    self.permanent.append(f"{tag}: {exc.smtp_code} {exc.smtp_error!r}")
                    return
                self.refused.append(tag)
                self._close()  # start over with a new session (a refused AUTH leaves it unauthenticated)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                if any(code >= 500 for code in codes):
                    self.permanent.append(f"{tag}: {exc.recipients!r}")
                    return
                self.refused.append(tag)
                self._close()
            except (smtplib.SMTPServerDisconnected, OSError):
                self.refused.append(tag)
                self._close()
            attempt += 1
            time.sleep(0.2)

    def _close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.close()
            except OSError:
                pass
        self.smtp = None


def test_killing_the_primary_loses_and_duplicates_no_accepted_message(ha_lab: NativeLab) -> None:
    lab = lab_of(ha_lab)
    run = f"ha-{token().removeprefix('e2e-')}"
    # One local recipient (alpha's delivery) and one remote (alpha's relay, beta's MX and delivery).
    sender = Sender(lab, run, [ALICE, BOB])
    old_primary = primary(ha_lab, "alpha.test")
    assert old_primary is not None
    failover: list[BaseException] = []

    def kill_and_recover() -> None:
        try:
            ha_lab.kill("alpha-redis")  # SIGKILL: no shutdown, no last fsync
            wait_for(
                "Sentinel to promote alpha's replica",
                lambda: (p := primary(ha_lab, "alpha.test")) is not None and p != old_primary,
                timeout=60,
            )
            # The old primary comes back (as a supervisor would start it) and Sentinel makes it a replica
            # of the new one; until then the new primary has no replica and refuses writes.
            ha_lab.restart("alpha-redis")
        except BaseException as exc:  # surfaced by the main thread
            failover.append(exc)

    killer = threading.Thread(target=kill_and_recover, daemon=True)
    try:
        for n in range(COUNT):
            if n == COUNT // 3:
                killer.start()
            sender.send(n)
            if sender.permanent:
                break
        killer.join(timeout=90)
    finally:
        sender._close()
    assert not failover, failover
    assert primary(ha_lab, "alpha.test") != old_primary
    assert not sender.permanent, f"permanent refusals during the failover: {sender.permanent}"
    # The sender kept submitting while the primary was dead: it must have been told to come back later.
    assert sender.refused, "no submission was refused while alpha had no primary"

    def all_arrived() -> tuple[Counter, Counter] | None:
        alice = maildir_counts(ha_lab, "alpha.test", run)
        bob = maildir_counts(ha_lab, "beta.test", run)
        if all(tag in alice and tag in bob for tag in sender.accepted):
            return alice, bob
        return None

    alice, bob = wait_for("every accepted message in both Maildirs", all_arrived, timeout=120, every=1.0)
    for who, counts in (("alice", alice), ("bob", bob)):
        duplicated = {tag: c for tag, c in counts.items() if c > 1}
        assert not duplicated, f"delivered more than once to {who}: {duplicated}"
        unknown = set(counts) - set(sender.accepted) - set(sender.refused)
        assert not unknown, unknown


def _send_one(lab: Lab, domain: str, user: str, tag: str) -> int:
    """Submit one message from `user` to `user`; the SMTP reply code of DATA (or of the first refusal)."""
    host, port = hostport(lab.site(domain)["submission"])
    message = f"From: {user}\r\nTo: {user}\r\nSubject: {tag}\r\nX-E2E-Token: {tag}\r\n\r\nhello\r\n"
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.login(user, lab.password(user))
            smtp.sendmail(user, [user], message.encode())
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code
    except smtplib.SMTPRecipientsRefused as exc:
        return next(iter(exc.recipients.values()))[0]
    return 250


def test_without_a_replica_acknowledging_submission_answers_4xx_not_250(ha_lab: NativeLab) -> None:
    lab = lab_of(ha_lab)
    run = f"ha-lone-{token().removeprefix('e2e-')}"
    replica = ha_lab.processes["beta-redis-replica"]
    assert _send_one(lab, "beta.test", BOB, f"{run}-before") == 250

    # A replica that hangs (SIGSTOP): the primary still counts it as connected for min-replicas-max-lag
    # seconds, so only the WAIT after the transaction can tell that nobody has the message but the primary.
    assert replica.proc is not None
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        code = _send_one(lab, "beta.test", BOB, f"{run}-stopped")
        assert 400 <= code < 500, f"a message no replica confirmed was answered {code}"
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    wait_for(
        "a 250 once the replica is back", lambda: _send_one(lab, "beta.test", BOB, f"{run}-again") == 250
    )

    # A replica that is gone: the primary itself refuses every write (min-replicas-to-write).
    ha_lab.kill("beta-redis-replica")
    try:
        address = primary(ha_lab, "beta.test")
        assert address is not None
        direct = redis.Redis(*address, socket_timeout=5)
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            direct.set(f"{run}-probe", b"1")
        code = _send_one(lab, "beta.test", BOB, f"{run}-alone")
        assert 400 <= code < 500, f"a message the lone primary could not replicate was answered {code}"
        assert f"{run}-alone" not in maildir_counts(ha_lab, "beta.test", run)
    finally:
        ha_lab.restart("beta-redis-replica")
    wait_for(
        "a 250 with the replica restarted",
        lambda: _send_one(lab, "beta.test", BOB, f"{run}-end") == 250,
        timeout=60,
    )
