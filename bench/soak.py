"""`python -m bench.soak` (`make soak`): do the queues give back what they took?

Sends N messages (default 20,000) in bursts through a native lab started on free ports, alpha's submission
→ alpha's relay → beta's MX → beta's Maildirs, retrieves and deletes them over POP3 after each burst, and
waits for every queue to drain. Then it compares each site's Redis with how it was after a warm-up:
- the queue streams (local, outbound) are empty again, nothing is pending, no dead letter, no retry left;
- no message body is left, and the memory of keys without an expiry (everything but the trace stream) is
  back within `--memory-bound` of its start;
- the trace stream is within its cap (it is capped, not emptied: it is for watching);
- the AOF is rewritten by Redis itself (auto-aof-rewrite) and ends within its rewrite threshold, rather
  than holding every write ever made.
Keys with an expiry (delivery's markers and duplicate-suppression claims, one each per message and
recipient, kept 7 days by design) are reported separately. Exit 1 when a check fails.
"""

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.__main__ import yubin_lab
from bench.load import run_once
from bench.targets import yubin_target
from shared.body_store import BODY_KEY
from shared.streams import (
    DEAD_LETTER,
    DELIVERY_GROUP,
    LOCAL_DELIVERY,
    OUTBOUND,
    RELAY_GROUP,
    TRACE,
    TRACE_MAXLEN,
)

QUEUES = {LOCAL_DELIVERY: DELIVERY_GROUP, OUTBOUND: RELAY_GROUP}
BODY_PREFIX = BODY_KEY.format("")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--count", type=int, default=20_000, help="messages in all (default 20000)")
    parser.add_argument("--burst", type=int, default=2_000, help="messages per burst (default 2000)")
    parser.add_argument("--size", type=int, default=4096, help="message size in octets (default 4096)")
    parser.add_argument("-c", "--sessions", type=int, default=8, help="concurrent SMTP sessions (default 8)")
    parser.add_argument(
        "--memory-bound",
        type=float,
        default=2.0,
        help="most MB that keys without an expiry may have grown by, per site (default 2)",
    )
    parser.add_argument(
        "--aof-rewrite-min-size",
        help="set Redis's auto-aof-rewrite-min-size for the soak (e.g. 8mb), so a short soak crosses it",
    )
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="seconds to wait for the queues")
    parser.add_argument("--json-out", type=Path, help="write the figures here as JSON")
    # For yubin_lab: always a lab of our own (the soak must see its Redis from the start).
    parser.set_defaults(lab_info=None, new_lab=True, lab_set=[])
    return parser.parse_args()


@dataclass
class Snapshot:
    used_memory: int
    trace_memory: int
    trace_length: int
    queue_lengths: dict[str, int]
    pending: dict[str, int]
    dead_letters: int
    retry_entries: int
    bodies: int
    persistent_memory: int
    """MEMORY USAGE of every key without an expiry, less the trace stream."""
    expiring_keys: dict[str, int]
    expiring_memory: int
    aof_size: int
    aof_base_size: int
    aof_rewrites: int


def is_retry_schedule(key: bytes) -> bool:
    """The sorted sets of deferred envelopes (yubin:relay:retry, yubin:delivery:deferred, or their successor)."""
    return b"retry" in key or b"deferred" in key


def key_prefix(key: bytes) -> str:
    return ":".join(key.decode(errors="replace").split(":")[:2])


def snapshot(client: redis.Redis) -> Snapshot:
    persistent = expiring_memory = bodies = retry_entries = 0
    expiring: dict[str, int] = defaultdict(int)
    keys = list(client.scan_iter(count=1000))
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
            pipe.pttl(key)
            pipe.type(key)
        replies = pipe.execute()
        for n, key in enumerate(batch):
            usage, ttl, kind = replies[3 * n : 3 * n + 3]
            if key == TRACE.encode():
                continue
            if ttl is not None and ttl >= 0:
                expiring[key_prefix(key)] += 1
                expiring_memory += usage or 0
            else:
                persistent += usage or 0
            if key.startswith(BODY_PREFIX.encode()) and not key.endswith(b":holders"):
                bodies += 1
            if kind == b"zset" and is_retry_schedule(key):
                retry_entries += client.zcard(key)
    info = client.info()
    return Snapshot(
        used_memory=int(info["used_memory"]),
        trace_memory=int(client.memory_usage(TRACE, samples=0) or 0),
        trace_length=int(client.xlen(TRACE)),
        queue_lengths={stream: int(client.xlen(stream)) for stream in QUEUES},
        pending={
            stream: int(client.xpending(stream, group)["pending"]) if client.exists(stream) else 0
            for stream, group in QUEUES.items()
        },
        dead_letters=int(client.xlen(DEAD_LETTER)),
        retry_entries=retry_entries,
        bodies=bodies,
        persistent_memory=persistent,
        expiring_keys=dict(expiring),
        expiring_memory=expiring_memory,
        aof_size=int(info.get("aof_current_size", 0)),
        aof_base_size=int(info.get("aof_base_size", 0)),
        aof_rewrites=int(info.get("aof_rewrites", 0)),
    )


def drained(client: redis.Redis) -> bool:
    for stream, group in QUEUES.items():
        if client.exists(stream) and (client.xlen(stream) or client.xpending(stream, group)["pending"]):
            return False
    schedules = [k for k in client.scan_iter(match="yubin:*", _type="zset") if is_retry_schedule(k)]
    return not any(client.zcard(key) for key in schedules)


def wait_drained(clients: dict[str, redis.Redis], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(drained(c) for c in clients.values()):
        if time.monotonic() > deadline:
            raise SystemExit(f"the queues did not drain within {timeout:.0f} s")
        time.sleep(0.2)


def mb(octets: float) -> str:
    return f"{octets / 1e6:.2f} MB"


def checks(
    site: str, before: Snapshot, after: Snapshot, args: argparse.Namespace, rewrite_min: int
) -> list[str]:
    failures = []
    if any(after.queue_lengths.values()) or any(after.pending.values()):
        failures.append(f"{site}: queues not empty: {after.queue_lengths}, pending {after.pending}")
    if after.dead_letters:
        failures.append(f"{site}: {after.dead_letters} dead letters")
    if after.retry_entries:
        failures.append(f"{site}: {after.retry_entries} envelopes still waiting for a retry")
    if after.bodies > before.bodies:
        failures.append(f"{site}: {after.bodies - before.bodies} message bodies left behind")
    grown = after.persistent_memory - before.persistent_memory
    if grown > args.memory_bound * 1e6:
        failures.append(f"{site}: keys without an expiry grew by {mb(grown)} (bound {args.memory_bound} MB)")
    if after.trace_length > TRACE_MAXLEN * 1.1:
        failures.append(f"{site}: trace stream holds {after.trace_length} entries (cap ~{TRACE_MAXLEN})")
    # Redis rewrites once the AOF is twice its base and over the minimum size: never much above that.
    threshold = max(rewrite_min, 2 * after.aof_base_size)
    if after.aof_size > threshold * 1.25:
        failures.append(f"{site}: AOF is {mb(after.aof_size)}, above its rewrite threshold {mb(threshold)}")
    return failures


def shown(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key.rpartition(':')[2]} {n}" for key, n in value.items()) or "-"
    return str(value)


def report(site: str, before: Snapshot, after: Snapshot) -> str:
    rows = [
        ("used_memory", mb(before.used_memory), mb(after.used_memory)),
        ("  of which trace stream", mb(before.trace_memory), mb(after.trace_memory)),
        ("  keys with an expiry", mb(before.expiring_memory), mb(after.expiring_memory)),
        ("keys without expiry (no trace)", mb(before.persistent_memory), mb(after.persistent_memory)),
        ("queue entries (local, outbound)", before.queue_lengths, after.queue_lengths),
        ("pending", before.pending, after.pending),
        ("trace entries", before.trace_length, after.trace_length),
        ("dead letters", before.dead_letters, after.dead_letters),
        ("retry entries", before.retry_entries, after.retry_entries),
        ("message bodies", before.bodies, after.bodies),
        ("expiring keys", before.expiring_keys, after.expiring_keys),
        ("AOF size", mb(before.aof_size), mb(after.aof_size)),
        ("AOF base size", mb(before.aof_base_size), mb(after.aof_base_size)),
        ("AOF rewrites", before.aof_rewrites, after.aof_rewrites),
    ]
    lines = [f"{site}:", f"  {'':34} {'after warm-up':>24} {'after soak':>24}"]
    lines += [f"  {name:34} {shown(b):>24} {shown(a):>24}" for name, b, a in rows]
    return "\n".join(lines)


def main() -> int:
    args = arguments()
    started = time.monotonic()
    with yubin_lab(args) as info:
        clients = {site: redis.Redis.from_url(s["redis"]) for site, s in info["sites"].items()}
        if args.aof_rewrite_min_size:
            for client in clients.values():
                client.config_set("auto-aof-rewrite-min-size", args.aof_rewrite_min_size)
        rewrite_min = {
            s: int(c.config_get("auto-aof-rewrite-min-size")["auto-aof-rewrite-min-size"])
            for s, c in clients.items()
        }
        target = yubin_target(info, args.sessions)
        # Warm-up: users, consumer groups, caches and connections exist before the baseline is taken.
        run_once(target, count=min(200, args.burst), size=args.size, sessions=args.sessions)
        wait_drained(clients, args.drain_timeout)
        before = {site: snapshot(c) for site, c in clients.items()}
        sent = missing = duplicates = 0
        peak_aof = {site: 0 for site in clients}
        while sent < args.count:
            burst = min(args.burst, args.count - sent)
            result = run_once(target, count=burst, size=args.size, sessions=args.sessions)
            sent += burst
            missing += result.missing
            duplicates += result.duplicates
            for site, client in clients.items():
                peak_aof[site] = max(peak_aof[site], int(client.info("persistence")["aof_current_size"]))
            print(
                f"soak: {sent}/{args.count} sent, missing {missing}, duplicates {duplicates}", file=sys.stderr
            )
        wait_drained(clients, args.drain_timeout)
        after = {site: snapshot(c) for site, c in clients.items()}
        for client in clients.values():
            client.close()
    failures = [
        f for site in before for f in checks(site, before[site], after[site], args, rewrite_min[site])
    ]
    if missing or duplicates:
        failures.append(f"{missing} messages missing, {duplicates} duplicates")
    print(f"soak: {sent} messages of {args.size} octets in bursts of {args.burst}, "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    for site in before:
        print(report(site, before[site], after[site]))
        print(f"  {'AOF peak (sampled after each burst)':34} {'':>24} {mb(peak_aof[site]):>24}")
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {
                    "count": sent,
                    "size": args.size,
                    "burst": args.burst,
                    "before": {s: vars(v) for s, v in before.items()},
                    "after": {s: vars(v) for s, v in after.items()},
                    "failures": failures,
                },
                indent=2,
            )
        )
    for failure in failures:
        print(f"FAILED: {failure}")
    print("soak: ok" if not failures else "soak: FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
