"""One benchmark run: submit N messages over C authenticated SMTP sessions, wait until every one is in a
recipient's Maildir, then retrieve and delete them all over POP3.

Latency is taken from the clock at the start of each SMTP transaction to the modification time of the
message file in `new/` (the rename into new/ is what makes a message visible to POP3), so the watcher
can poll lazily without distorting the figure or stealing CPU from the servers.
"""

import asyncio
import os
import poplib
import random
import re
import socket
import string
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import aiosmtplib

from bench.cpu import per_message_ms, snapshot
from bench.targets import Target

BENCH_ID = re.compile(rb"X-Bench-Id: (\S+)")


@dataclass
class RunResult:
    count: int
    size: int
    sessions: int
    rate: float | None
    submit_seconds: float
    end_to_end_seconds: float
    latencies_ms: list[float] = field(repr=False)
    pop3_seconds: float
    pop3_messages: int
    pop3_bytes: int
    missing: int
    duplicates: int
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU per message of each lab process, from the end of the logins to the last arrival."""
    pop3_cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU per message of each lab process while the messages were retrieved and deleted."""


def message(sender: str, recipient: str, bench_id: str, size: int) -> bytes:
    head = (
        f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: bench {bench_id}\r\n"
        f"Message-ID: <{bench_id}@bench.alpha.test>\r\nX-Bench-Id: {bench_id}\r\n\r\n"
    )
    line_count = max(1, (size - len(head)) // 78)
    rng = random.Random(bench_id)
    alphabet = string.ascii_letters + string.digits + " "
    lines = ["".join(rng.choices(alphabet, k=76)) for _ in range(line_count)]
    return (head + "\r\n".join(lines) + "\r\n").encode()


async def submit_all(
    target: Target,
    run_id: str,
    count: int,
    size: int,
    sessions: int,
    rate: float | None,
    starttls: bool,
    on_start: Callable[[], None] = lambda: None,
) -> tuple[dict[str, float], float]:
    """Send every message; returns {bench id: wall-clock start of its transaction} and the submit time."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    recipients = list(target.recipients)
    started: dict[str, float] = {}
    # Log every session in first, one after the other: a login costs an argon2 hash (deliberately slow),
    # which is not what this measures, and a burst of them would queue up in the auth service.
    clients = []
    for sender, password in target.senders.items():
        smtp = aiosmtplib.SMTP(
            hostname=target.submission[0], port=target.submission[1], start_tls=starttls, timeout=120
        )
        await smtp.connect()
        await smtp.login(sender, password)
        clients.append((smtp, sender))
    on_start()
    t0 = time.monotonic()

    async def session(smtp: aiosmtplib.SMTP, sender: str) -> None:
        try:
            while not queue.empty():
                n = queue.get_nowait()
                if rate is not None:
                    await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
                recipient = recipients[n % len(recipients)]
                bench_id = f"{run_id}-{n}"
                data = message(sender, recipient, bench_id, size)
                started[bench_id] = time.time()
                await smtp.sendmail(sender, [recipient], data)
        finally:
            await smtp.quit()

    await asyncio.gather(*(session(smtp, sender) for smtp, sender in clients))
    return started, time.monotonic() - t0


def listening(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


def count_new(target: Target) -> int:
    total = 0
    for address in target.recipients:
        try:
            total += len(os.listdir(target.maildir_new(address)))
        except FileNotFoundError:
            pass
    return total


def arrivals(target: Target) -> dict[str, list[float]]:
    """{bench id: [mtime of each file carrying it]} for every file in the recipients' new/ directories."""
    found: dict[str, list[float]] = {}
    for address in target.recipients:
        directory = target.maildir_new(address)
        if not directory.exists():
            continue
        for entry in os.scandir(directory):
            with open(entry.path, "rb") as file:
                match = BENCH_ID.search(file.read(4096))
            if match:
                found.setdefault(match.group(1).decode(), []).append(entry.stat().st_mtime)
    return found


def drain(
    target: Target, sessions: int, on_start: Callable[[], None] = lambda: None
) -> tuple[int, int, float]:
    """RETR + DELE every message of every recipient (one POP3 session each, in parallel):
    (messages, octets, seconds from the end of the logins to the last QUIT). Logins are left out: they
    cost a deliberately slow password hash (argon2) that says nothing about retrieval."""
    lock = threading.Lock()
    totals = [0, 0]
    logged_in = []
    for address, password in target.recipients.items():  # one login after the other (see submit_all)
        pop = poplib.POP3(*target.pop3, timeout=120)
        pop.user(address)
        pop.pass_(password)
        logged_in.append(pop)
    on_start()

    def one(pop: poplib.POP3) -> None:
        count, _ = pop.stat()
        octets = 0
        for n in range(1, count + 1):
            _, _lines, size = pop.retr(n)
            octets += size
            pop.dele(n)
        pop.quit()
        with lock:
            totals[0] += count
            totals[1] += octets

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=sessions) as pool:
        list(pool.map(one, logged_in))
    return totals[0], totals[1], time.monotonic() - t0


def run_once(
    target: Target,
    *,
    count: int,
    size: int,
    sessions: int,
    rate: float | None = None,
    starttls: bool = False,
    timeout: float = 600.0,
    pids: dict[str, int] | None = None,
) -> RunResult:
    """pids: {name: pid} of the lab's processes, whose CPU per message is then reported."""
    pids = pids or {}
    drain(target, sessions)  # start from empty maildrops
    run_id = f"r{int(time.time() * 1000):x}"
    cpu_start: dict[str, float] = {}
    started, submit_seconds = asyncio.run(
        submit_all(
            target, run_id, count, size, sessions, rate, starttls, lambda: cpu_start.update(snapshot(pids))
        )
    )
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + 1
    while count_new(target) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        if time.monotonic() > next_check:
            next_check = time.monotonic() + 1
            if not listening(target.pop3):
                raise RuntimeError(f"{target.name}: POP3 at {target.pop3} is gone; did the lab stop?")
    if pids:
        time.sleep(0.5)  # the acks and last writes that follow the rename into new/
    cpu_end = snapshot(pids)
    found = arrivals(target)
    latencies = [(min(found[i]) - t) * 1000 for i, t in started.items() if i in found]
    first_start = min(started.values())
    last_arrival = max((min(times) for i, times in found.items() if i in started), default=first_start)
    pop3_start: dict[str, float] = {}
    retrieved, octets, pop3_seconds = drain(target, sessions, lambda: pop3_start.update(snapshot(pids)))
    pop3_end = snapshot(pids)
    return RunResult(
        count=count,
        size=size,
        sessions=sessions,
        rate=rate,
        submit_seconds=submit_seconds,
        end_to_end_seconds=last_arrival - first_start,
        latencies_ms=latencies,
        pop3_seconds=pop3_seconds,
        pop3_messages=retrieved,
        pop3_bytes=octets,
        missing=sum(1 for i in started if i not in found),
        duplicates=sum(len(times) - 1 for times in found.values()),
        cpu_ms=per_message_ms(cpu_start, cpu_end, count) if pids else {},
        pop3_cpu_ms=per_message_ms(pop3_start, pop3_end, max(1, retrieved)) if pids else {},
    )
