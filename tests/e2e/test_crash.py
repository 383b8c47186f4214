"""kill -9 in the middle of the traffic loses nothing and duplicates nothing.

200 messages go from alice to bob while alpha's relay and beta's delivery service are killed with SIGKILL
and started again; every message must end up in bob's maildrop exactly once (counted by a unique token
per message over POP3). The e2e lab reclaims an orphaned stream entry after YUBIN_BUS_CLAIM_IDLE_MS.
"""

import collections
import re
import smtplib
import threading

import pytest

from tests.e2e.conftest import Lab
from tests.e2e.mail import hostport, maildrop, token, wait_for
from tests.e2e.native_lab import NativeLab

ALICE = "alice@alpha.test"
BOB = "bob@beta.test"
COUNT = 200
TOKEN = re.compile(rb"X-E2E-Token: (crash-[0-9a-f]+-\d+)")


def send_all(lab: Lab, run: str, on_sent) -> None:
    host, port = hostport(lab.site("alpha.test")["submission"])
    with smtplib.SMTP(host, port, timeout=60) as smtp:
        smtp.login(ALICE, lab.password(ALICE))
        for n in range(COUNT):
            message = (
                f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: crash {n}\r\nX-E2E-Token: {run}-{n}\r\n\r\n"
                f"message {n} of {COUNT}\r\n"
            )
            smtp.sendmail(ALICE, [BOB], message.encode())
            on_sent(n)


@pytest.mark.native_only
def test_sigkill_of_relay_and_delivery_loses_and_duplicates_nothing(lab: Lab, native_lab: NativeLab) -> None:
    run = f"crash-{token().removeprefix('e2e-')}"
    crashes = {COUNT // 4: "alpha-relay", COUNT // 2: "beta-delivery", 3 * COUNT // 4: "alpha-relay"}
    killed: list[str] = []
    crash_error: list[BaseException] = []

    def on_sent(n: int) -> None:
        if n in crashes:
            name = crashes[n]
            native_lab.kill(name)
            killed.append(name)
            # Restart from another thread: the sender keeps submitting while the service is down.
            threading.Thread(target=restart, args=(name,), daemon=True).start()

    def restart(name: str) -> None:
        try:
            native_lab.restart(name)
        except BaseException as exc:  # surfaced by the main thread
            crash_error.append(exc)

    send_all(lab, run, on_sent)
    assert killed == list(crashes.values())

    def tokens() -> collections.Counter | None:
        found = collections.Counter(
            t.decode()
            for data in maildrop(lab, BOB)
            for t in TOKEN.findall(data)
            if t.startswith(run.encode())
        )
        return found if sum(found.values()) >= COUNT else None

    try:
        counts = wait_for(f"{COUNT} messages in bob's maildrop", tokens, timeout=90, every=1.0)
        assert not crash_error, crash_error
        assert set(counts) == {f"{run}-{n}" for n in range(COUNT)}
        duplicates = {t: c for t, c in counts.items() if c != 1}
        assert not duplicates, f"delivered more than once: {duplicates}"
    finally:
        maildrop(lab, BOB, delete_matching=lambda data: run.encode() in data)
