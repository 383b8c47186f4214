"""`python -m chaos` (`make chaos`): N messages through the native lab while a seeded schedule kills and
pauses its processes; then lost and duplicated messages are counted from the Maildirs on disk.

The lab is started for the run (`yubin lab up --free-ports` in a temporary directory, short retry timers)
and stopped at the end. Senders on both sites submit to local and remote recipients and retry what was not
acknowledged; a few messages also go to an unknown user at the other site and must come back as exactly
one DSN. Exit status 0 only for: lost 0, duplicated 0, no dead letter, every expected DSN, queues drained.
"""

import argparse
import json
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from chaos.faults import Injector, schedule
from chaos.lab import ChaosLab
from chaos.senders import Pop3Poller, Sender, plan
from chaos.verify import dead_letters, read_mailboxes, wait_drained

EXTRA_USERS = ("anna@alpha.test", "bea@beta.test")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, help="the fault schedule and message plan (default: random)")
    parser.add_argument("-n", "--count", type=int, help="messages (default 2000; --short: 300)")
    parser.add_argument("--short", action="store_true", help="the CI form: fewer messages and faults")
    parser.add_argument("--faults", type=int, help="faults to inject (default 60; --short: 12)")
    parser.add_argument("--bounce-share", type=float, default=0.03, help="messages with an unknown recipient")
    parser.add_argument("--send-timeout", type=float, default=600.0, help="seconds for the senders")
    parser.add_argument("--drain-timeout", type=float, default=240.0, help="seconds for the queues to drain")
    parser.add_argument("--keep", action="store_true", help="keep the lab directory (logs, Maildirs)")
    parser.add_argument("--lab-dir", type=Path, help="lab directory (default: a temporary one)")
    parser.add_argument(
        "--lab-set",
        action="append",
        default=[],
        metavar="YUBIN_NAME=VALUE",
        help="a setting for the lab, over the chaos run's own (e.g. YUBIN_BUS_CLAIM_IDLE_MS=2000)",
    )
    args = parser.parse_args()
    if args.seed is None:
        args.seed = secrets.randbelow(1_000_000)
    args.count = args.count or (300 if args.short else 2000)
    args.faults = args.faults if args.faults is not None else (12 if args.short else 60)
    return args


def main() -> int:
    args = arguments()
    lab_dir = args.lab_dir or Path(tempfile.mkdtemp(prefix="yubin-chaos-"))
    print(f"chaos: seed {args.seed}, {args.count} messages, {args.faults} faults, lab {lab_dir}", flush=True)
    lab = ChaosLab(lab_dir, dict(pair.split("=", 1) for pair in args.lab_set))
    began = time.monotonic()
    failed = True
    try:
        failed = run(args, lab)
    finally:
        lab.stop()
        if args.keep or failed:
            print(f"chaos: lab directory kept: {lab_dir} (lab.log, processes.json, Maildirs)")
        elif args.lab_dir is None:
            shutil.rmtree(lab_dir, ignore_errors=True)
        print(f"chaos: {time.monotonic() - began:.0f} s in all, {'FAILED' if failed else 'passed'}")
    return 1 if failed else 0


def run(args: argparse.Namespace, lab: ChaosLab) -> bool:
    """True if the run found a problem."""
    began = time.monotonic()
    info = lab.start()
    print(f"chaos: lab up in {time.monotonic() - began:.0f} s", flush=True)
    lab.add_users({address: secrets.token_urlsafe(12) for address in EXTRA_USERS})
    users = [address for site in info["sites"].values() for address in site["users"]]
    tag = f"{args.seed}-{secrets.token_hex(3)}"
    messages = plan(args.seed, args.count, users, args.bounce_share, tag)
    faults = schedule(args.seed, args.faults, gap_s=(1.0, 3.0) if not args.short else (1.5, 4.0),
                      pause_s=(3.0, 8.0))  # fmt: skip
    done = threading.Event()
    started = time.monotonic()
    deadline = started + args.send_timeout
    # The traffic is spread over the fault schedule (as fast as the lab takes it, if that is slower).
    interval = sum(f.gap_s for f in faults) / max(1, max(len(m) for m in messages.values()))
    senders = [
        Sender(user, password(info, user), submission(info, user), messages[user], deadline, interval)
        for user in users
    ]
    pollers = [
        Pop3Poller(user, password(info, user), pop3(info, user), done) for user in users[:1] + users[-1:]
    ]
    injector = Injector(lab, faults, done)
    for thread in (*senders, *pollers, injector):
        thread.start()
    for sender in senders:
        sender.join()
    send_time = time.monotonic() - started
    injector.join()  # every fault of the schedule, even if the last ones hit the queues draining
    done.set()
    for poller in pollers:
        poller.join()
    drained, left = wait_drained([site["redis"] for site in info["sites"].values()], args.drain_timeout)
    total_time = time.monotonic() - started

    all_messages = [m for ms in messages.values() for m in ms]
    our_ids = re.compile(rb"chaos\." + re.escape(tag.encode()) + rb"\.\d+@(?:alpha|beta)\.test")
    boxes = read_mailboxes([Path(site["mail_root"]) for site in info["sites"].values()], our_ids)
    lost, duplicated, unacknowledged_twice, dsn_missing, dsn_twice, unacknowledged = [], [], [], [], [], 0
    for message in all_messages:
        for rcpt in message.recipients:
            if rcpt in message.bounces:
                continue
            copies = boxes.copies.get((rcpt, message.message_id), 0)
            if rcpt not in message.accepted:
                unacknowledged += 1
                if copies > 1:
                    unacknowledged_twice.append(f"{message.message_id} -> {rcpt} x{copies}")
            elif copies == 0:
                lost.append(f"{message.message_id} -> {rcpt}")
            elif copies > 1:
                duplicated.append(f"{message.message_id} -> {rcpt} x{copies}")
        if message.bounces and set(message.bounces) <= message.accepted:
            dsns = boxes.dsns.get((message.sender, message.message_id), 0)
            if dsns == 0:
                dsn_missing.append(message.message_id)
            elif dsns > 1:
                dsn_twice.append(f"{message.message_id} x{dsns}")
    dead = {domain: dead_letters(site["redis"]) for domain, site in info["sites"].items()}
    dead_ids = {
        found.group(0).decode()
        for entries in dead.values()
        for e in entries
        if (found := our_ids.search(str(e).encode()))
    }
    lost = [f"{item}  (dead-lettered)" if item.split(" ->")[0] in dead_ids else item for item in lost]
    restarts = {name: p["restarts"] for name, p in lab.processes().items() if p["restarts"]}

    print(f"\nseed {args.seed}: sent in {send_time:.0f} s, done in {total_time:.0f} s")
    print(f"faults injected ({len(injector.injected)}):")
    for injected in injector.injected:
        print("  " + injected.describe())
    print(f"restarts by the supervisor: {json.dumps(restarts)}")
    recipients = sum(len(m.recipients) - len(m.bounces) for m in all_messages)
    attempts = sum(m.attempts for m in all_messages)
    errors: dict[str, int] = {}
    for sender in senders:
        for key, value in sender.stats.errors.items():
            errors[key] = errors.get(key, 0) + value
    print(
        f"messages {len(all_messages)}, recipients {recipients}, acknowledged "
        f"{recipients - unacknowledged}, submission attempts {attempts}, client errors {json.dumps(errors)}"
    )
    print(f"recovery paths taken (lines in lab.log): {json.dumps(recoveries(lab.lab_dir / 'lab.log'))}")
    print(f"POP3 sessions {sum(p.sessions for p in pollers)}, failed {sum(p.errors for p in pollers)}")
    bounced = sum(1 for m in all_messages if m.bounces)
    print(f"DSNs expected {bounced}, missing {len(dsn_missing)}, more than one {len(dsn_twice)}")
    problems = {
        "lost": lost,
        "duplicated": duplicated,
        "unacknowledged and delivered twice": unacknowledged_twice,
        "DSN missing": dsn_missing,
        "DSN more than once": dsn_twice,
        "dead letters": [
            f"{d}: {e.get('stream')} {e.get('entry_id')} {e.get('reason')} {named(our_ids, e)}"
            for d, entries in dead.items()
            for e in entries
        ],
        "unexpected files in Maildirs": boxes.foreign,
        "injector errors": injector.errors,
        "queues not drained": [json.dumps(left)] if not drained else [],
        "not acknowledged before the send timeout": [str(unacknowledged)] if unacknowledged else [],
    }
    for what, items in problems.items():
        if items:
            print(f"{what} ({len(items)}):")
            for item in items[:20]:
                print(f"  {item}")
    in_dead = sum(1 for item in lost if item.endswith("(dead-lettered)"))
    if lost:
        print(f"of the {len(lost)} lost, {in_dead} are in a dead-letter stream (not delivered, not gone)")
    print(f"\nlost {len(lost)} / duplicated {len(duplicated)}")
    return any(problems.values())


RECOVERIES = {
    "duplicate suppressed": "duplicate suppressed",
    "stored by an earlier attempt": "stored by an earlier attempt",
    "interrupted delivery finished": "finished an interrupted delivery",
    "orphaned entries reclaimed": "reclaimed",
    "handler failures": "handler failed",
    "dead-lettered": "dead-lettering entry",
}


def recoveries(log_path: Path) -> dict[str, int]:
    """How often the services took their crash-recovery paths, from their log lines."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return {name: text.count(needle) for name, needle in RECOVERIES.items() if needle in text}


def named(our_ids: re.Pattern[bytes], entry: dict) -> str:
    """The Message-ID of ours a dead-letter entry carries, if any."""
    found = our_ids.search(str(entry).encode())
    return found.group(0).decode() if found else ""


def password(info: dict, address: str) -> str:
    return info["sites"][address.rpartition("@")[2]]["users"][address]


def endpoint(info: dict, address: str, key: str) -> tuple[str, int]:
    host, _, port = info["sites"][address.rpartition("@")[2]][key].rpartition(":")
    return host, int(port)


def submission(info: dict, address: str) -> tuple[str, int]:
    return endpoint(info, address, "submission")


def pop3(info: dict, address: str) -> tuple[str, int]:
    return endpoint(info, address, "pop3")


if __name__ == "__main__":
    sys.exit(main())
