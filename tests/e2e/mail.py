"""Helpers of the end-to-end tests: run `yubin`, read a maildrop over POP3, wait for something to happen."""

import poplib
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from typing import TypeVar

from tests.e2e.conftest import Lab

T = TypeVar("T")


def token() -> str:
    return f"e2e-{secrets.token_hex(6)}"


def yubin(
    lab: Lab, *args: str, input: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run the real `yubin` console script's code in a subprocess, pointed at the lab's info file."""
    result = subprocess.run(
        [sys.executable, "-m", "yubin.cli", *args],
        input=input,
        capture_output=True,
        timeout=120,
        env={"YUBIN_LAB_INFO": str(lab.info_path), "PATH": "/usr/bin:/bin"},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"yubin {' '.join(args)} exited {result.returncode}:\n{result.stdout.decode()}\n{result.stderr.decode()}"
        )
    return result


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0, every: float = 0.3) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


def pop3_session(lab: Lab, address: str) -> poplib.POP3:
    host, port = hostport(lab.site(address.rpartition("@")[2])["pop3"])
    pop = poplib.POP3(host, port, timeout=30)
    if "STLS" in pop.capa():
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        pop.stls(context)
    pop.user(address)
    pop.pass_(lab.password(address))
    return pop


def maildrop(
    lab: Lab, address: str, *, delete_matching: Callable[[bytes], bool] | None = None
) -> list[bytes]:
    """Every message in the maildrop as its octets (CRLF line ends); optionally delete some of them."""
    pop = pop3_session(lab, address)
    try:
        messages = []
        for number in range(1, len(pop.list()[1]) + 1):
            _, lines, _ = pop.retr(number)
            data = b"\r\n".join(lines) + b"\r\n"
            messages.append(data)
            if delete_matching is not None and delete_matching(data):
                pop.dele(number)
        pop.quit()
        return messages
    except BaseException:
        pop.close()
        raise


def messages_with(lab: Lab, address: str, needle: str, *, delete: bool = False) -> list[bytes]:
    raw = needle.encode()
    found = [
        m
        for m in maildrop(lab, address, delete_matching=(lambda d: raw in d) if delete else None)
        if raw in m
    ]
    return found


def wait_for_message(
    lab: Lab, address: str, needle: str, *, count: int = 1, timeout: float = 30.0
) -> list[bytes]:
    return wait_for(
        f"{count} message(s) with {needle!r} for {address}",
        lambda: found if len(found := messages_with(lab, address, needle)) >= count else None,
        timeout=timeout,
    )


def parse(data: bytes) -> Message:
    return message_from_bytes(data, policy=default_policy)


def received_headers(data: bytes) -> list[str]:
    return [str(value) for value in parse(data).get_all("Received", [])]
