"""`python -m bench.delivery_mailbox`: what one local delivery costs into an empty mailbox and into a full one.

The cost of a delivery must not grow with the mailbox (issue 10 §2). This runs the real delivery handler
(`services.delivery.handler.Deliverer`) in this process against a real redis-server (the project's
configuration: appendfsync always) and the real auth service, into a Maildir holding 0 messages and one
holding `--messages` (default 50,000), for a user with a quota (the expensive case: usage must be known).
Reported per delivery: wall time and CPU time (this process, worker threads included), median and p95,
and the one-off cost of the first delivery to a mailbox after the service starts (when its usage is
counted from a listing). Not a test: nothing is asserted; the numbers go to docs/benchmark.md.
"""

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from redis.asyncio import Redis

from services.delivery.handler import Deliverer
from shared.auth_client import AuthClient
from shared.bus import Consumer
from shared.config.delivery import DeliverySettings
from shared.enqueue import enqueue
from shared.mailbox_usage import MailboxUsage
from shared.maildir import delivery_unique, mailbox_path, maildir_name
from shared.models import Envelope
from shared.redis_client import connect
from shared.streams import DELIVERY_GROUP, LOCAL_DELIVERY
from yubin.lab.config import free_port

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DOMAIN = "alpha.test"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery_mailbox", description=__doc__)
    parser.add_argument("--messages", type=int, default=50_000, help="messages in the full mailbox")
    parser.add_argument("--deliveries", type=int, default=300, help="deliveries measured per mailbox")
    parser.add_argument("--size", type=int, default=4096, help="message size in octets")
    return parser.parse_args()


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not open port {port}")


def fill(maildir: Path, count: int) -> None:
    """`count` messages in `cur/` as delivery names them (retrieved, as in a long-lived mailbox)."""
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    body = b"x" * 100
    for n in range(count):
        name = maildir_name(
            delivery_unique(f"old{n}", "x"), "mx.alpha.test", 4096, 4200, when=1_700_000_000 + n
        )
        (maildir / "cur" / f"{name}:2,").write_bytes(body)


async def measure(
    deliverer: Deliverer, consumer: Consumer, redis: Redis, recipient: str, body: bytes, count: int
) -> tuple[float, float, list[float], list[float]]:
    """(first wall, first CPU, wall per delivery, CPU per delivery) of `count` + 1 deliveries to `recipient`."""
    walls: list[float] = []
    cpus: list[float] = []
    for n in range(count + 1):
        envelope = Envelope(
            sender="carol@beta.test",
            recipients=[recipient],
            body_id="",
            message_id=f"<b{n}.{secrets.token_hex(4)}@beta.test>",
        )
        await enqueue(redis, body, {LOCAL_DELIVERY: envelope})
        [entry] = await consumer.read_new(1, block_ms=1000)
        wall, cpu = time.perf_counter(), time.process_time()
        await deliverer.handle(entry)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls[0], cpus[0], walls[1:], cpus[1:]


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


async def run(
    args: argparse.Namespace, redis_url: str, auth_url: str, service_token: str, mail_root: Path
) -> None:
    settings = DeliverySettings(
        redis_url=redis_url, auth_url=auth_url, service_token=service_token, mail_root=mail_root,
        hostname="mx.alpha.test",
    )  # fmt: skip
    redis = connect(redis_url)
    consumer = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, settings, name="bench")
    await consumer.ensure_group()
    body = b"From: carol@beta.test\r\nSubject: bench\r\n\r\n" + (b"y" * 78 + b"\r\n") * (args.size // 80)
    rows = []
    async with AuthClient(settings) as auth:
        deliverer = Deliverer(settings, redis, auth, consumer)
        for size in (0, args.messages):
            recipient = f"user{size}@{DOMAIN}"
            started = time.perf_counter()
            fill(mailbox_path(mail_root, recipient), size)
            print(
                f"mailbox of {size} messages filled in {time.perf_counter() - started:.1f} s", file=sys.stderr
            )
            await MailboxUsage(redis).forget_all()  # as when the delivery service starts
            first_wall, first_cpu, walls, cpus = await measure(
                deliverer, consumer, redis, recipient, body, args.deliveries
            )
            rows.append((size, first_wall, first_cpu, walls, cpus))
    await redis.aclose()
    print(
        f"\n{args.deliveries} deliveries of {len(body)} octets each, to a user with a quota; ms per delivery"
    )
    print(
        "| messages in the mailbox | wall p50 | wall p95 | CPU p50 | CPU p95 | first delivery after start: wall / CPU |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for size, first_wall, first_cpu, walls, cpus in rows:
        print(
            f"| {size:,} | {statistics.median(walls) * 1000:.2f} | {p95(walls) * 1000:.2f} "
            f"| {statistics.median(cpus) * 1000:.2f} | {p95(cpus) * 1000:.2f} "
            f"| {first_wall * 1000:.1f} / {first_cpu * 1000:.1f} |"
        )


def main() -> None:
    args = arguments()
    base = Path(tempfile.mkdtemp(prefix="yubin-bench-delivery-"))
    processes: list[subprocess.Popen] = []
    try:
        redis_port, auth_port = free_port(HOST), free_port(HOST)
        (base / "redis").mkdir()
        redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
        processes.append(
            subprocess.Popen(
                [
                    redis_server,
                    str(ROOT / "infra/redis/redis.conf"),
                    "--port",
                    str(redis_port),
                    "--bind",
                    HOST,
                    "--dir",
                    str(base / "redis"),
                    "--daemonize",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for_port(redis_port, processes[-1], "redis-server")
        redis_url = f"redis://{HOST}:{redis_port}/0"
        admin_token, service_token = f"admin-{secrets.token_hex(16)}", f"service-{secrets.token_hex(16)}"
        env = {
            **os.environ,
            "YUBIN_REDIS_URL": redis_url,
            "YUBIN_ADMIN_TOKEN": admin_token,
            "YUBIN_SERVICE_TOKEN": service_token,
            "YUBIN_AUTH_HOST": HOST,
            "YUBIN_AUTH_PORT": str(auth_port),
            "YUBIN_LOG_LEVEL": "WARNING",
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "services.auth"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for_port(auth_port, processes[-1], "auth service")
        auth_url = f"http://{HOST}:{auth_port}"
        with httpx.Client(base_url=auth_url, headers={"Authorization": f"Bearer {admin_token}"}) as admin:
            admin.post("/v1/domains", json={"name": DOMAIN}).raise_for_status()
            for size in (0, args.messages):
                admin.post(
                    "/v1/users",
                    json={
                        "address": f"user{size}@{DOMAIN}",
                        "password": secrets.token_hex(8),
                        "quota_bytes": 10**12,
                    },
                ).raise_for_status()
        asyncio.run(run(args, redis_url, auth_url, service_token, base / "mail"))
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=15)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
