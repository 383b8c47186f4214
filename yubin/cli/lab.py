"""`yubin lab up` runs the native lab (what `make lab` does); `yubin lab info` says where it is;
`yubin lab ps` lists its processes."""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from yubin.cli import fault
from yubin.cli.errors import CliError, ExitCode
from yubin.cli.lab_endpoints import add_lab_options, load_lab
from yubin.lab.certs import CertificateError
from yubin.lab.config import LAB_DIR_ENV, default_lab_dir, lab_config, with_free_ports
from yubin.lab.ha import with_ha
from yubin.lab.info import pid_alive
from yubin.lab.processes import UnknownSetting
from yubin.lab.provision import ProvisionError
from yubin.lab.replicas import ReplicasError, parse_replicas
from yubin.lab.runner import LabError, run_lab


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    lab = subparsers.add_parser("lab", help="run the native two-site lab, or show where it is")
    commands = lab.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="start the lab and run it until Ctrl-C",
        description="Start NSD, a Redis per site and every service of alpha.test and beta.test; create the "
        "demo users; print how to send and fetch. A process that dies is started again; Ctrl-C stops them "
        "all. Data stays in the lab directory.",
    )
    up.add_argument("--lab-dir", type=Path, help=f"lab directory (default: ${LAB_DIR_ENV}, else ./lab)")
    ports = up.add_mutually_exclusive_group()
    ports.add_argument("--free-ports", action="store_true", help="pick free ports (tests, benchmarks)")
    ports.add_argument(
        "--standard-ports", action="store_true", default=None, help="25/587/110/53 (root only)"
    )
    ports.add_argument(
        "--high-ports",
        dest="standard_ports",
        action="store_false",
        help="2525/5870/1100/5353 (default unless root)",
    )
    up.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="YUBIN_NAME=VALUE",
        help="a setting for every service that has it, e.g. YUBIN_RELAY_RETRY_SCHEDULE_S=1,2 (repeatable)",
    )
    up.add_argument(
        "--replicas",
        default="",
        metavar="ROLE=N[,ROLE=N]",
        help="processes per site of a stream consumer, e.g. relay=3,delivery=2 (the listeners run once "
        "natively; scale those in the compose lab)",
    )
    up.add_argument(
        "--ha",
        action="store_true",
        help="each site's Redis as primary + replica + 3 Sentinels; services follow failovers (docs/ha.md)",
    )
    up.add_argument(
        "--prometheus",
        action="store_true",
        help="also run Debian's prometheus against every process's /metrics (docs/metrics.md)",
    )
    up.add_argument("--info-file", type=Path, help="also write the lab info JSON here once the lab is ready")
    up.add_argument(
        "--log", type=Path, help="append the processes' output here (default <lab dir>/lab.log; '-': stdout)"
    )
    up.set_defaults(handler=lab_up)

    info = commands.add_parser("info", help="where the running lab's servers are, with tokens and passwords")
    info.add_argument("--json", action="store_true", help="the lab info as JSON")
    add_lab_options(info)
    info.set_defaults(handler=lab_info, lab=True)

    ps = commands.add_parser(
        "ps", help="the lab's processes: pid, state, restarts", description="Read <lab dir>/processes.json."
    )
    ps.add_argument("--lab-dir", type=Path, help=f"lab directory (default: ${LAB_DIR_ENV}, else ./lab)")
    ps.add_argument("--json", action="store_true", help="the supervisor's state as JSON")
    ps.set_defaults(handler=lab_ps)

    fault.add_parser(commands)


def parse_settings(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("YUBIN_"):
            raise CliError(f"--set needs YUBIN_NAME=VALUE, got {pair!r}", ExitCode.USAGE)
        settings[name] = value
    return settings


def lab_up(args: argparse.Namespace) -> int:
    try:
        replicas = parse_replicas(args.replicas)
    except ReplicasError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from exc
    config = lab_config(
        args.lab_dir,
        standard_ports=args.standard_ports,
        settings=parse_settings(args.set),
        prometheus=args.prometheus,
        replicas=replicas,
    )
    if args.free_ports:
        config = with_free_ports(config)
    if args.ha:
        config = with_ha(config, free_ports=args.free_ports)
    log_file = None
    try:
        if args.log is not None:
            log_file = sys.stdout.buffer if str(args.log) == "-" else args.log.open("ab")
        return run_lab(config, info_file=args.info_file, log=log_file)
    except UnknownSetting as exc:
        raise CliError(str(exc), ExitCode.USAGE) from exc
    except (LabError, ProvisionError, CertificateError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        if log_file is not None and log_file is not sys.stdout.buffer:
            log_file.close()


def lab_info(args: argparse.Namespace) -> int:
    info = load_lab(args.lab_info)
    if args.json:
        print(json.dumps(info, indent=2))
        return ExitCode.OK
    print(f"dns {info['dns']}")
    if "prometheus" in info:
        print(f"prometheus {info['prometheus']}")
    if "resolver" in info:  # the native lab's: NSD's answers, or SERVFAIL for a faulted domain
        print(f"resolver {info['resolver']}")
    for domain, site in info["sites"].items():
        print(f"\n{domain}")
        for key in ("submission", "mx", "pop3", "admin"):
            print(f"  {key:<11} {site[key]}")
        print(f"  {'admin token':<11} {site['admin_token']}")
        if scaled := {role: n for role, n in site.get("replicas", {}).items() if n > 1}:
            print(f"  {'replicas':<11} {', '.join(f'{role} x{n}' for role, n in scaled.items())}")
        for key, url in info.get("metrics", {}).items():
            if key.startswith(domain + "/"):
                print(f"  {'metrics':<11} {url}  ({key.partition('/')[2]})")
        for address, password in site.get("users", {}).items():
            print(f"  user        {address}  password {password}")
    if info.get("console"):
        print(f"\nconsole {info['console']}  password {info.get('console_password', '')}")
    return ExitCode.OK


def lab_ps(args: argparse.Namespace) -> int:
    lab_dir = args.lab_dir or default_lab_dir()
    path = lab_dir / "processes.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CliError(f"no lab has run in {lab_dir} (no {path.name})", ExitCode.NO_LAB) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    running = pid_alive(int(state["runner_pid"])) and any(
        p["state"] != "stopped" for p in state["processes"].values()
    )
    if args.json:
        print(json.dumps({**state, "running": running}, indent=2))
        return ExitCode.OK if running else ExitCode.NO_LAB
    print(ps_table(state["processes"], now=time.time()))
    if not running:
        print(f"\nthe lab in {lab_dir} is not running (runner pid {state['runner_pid']})")
        # The supervisor itself was killed (kill -9): its processes live on; say which, to end by pid.
        left = [
            f"{name} (pid {p['pid']})"
            for name, p in state["processes"].items()
            if p["pid"] is not None and p["state"] != "stopped" and pid_alive(int(p["pid"]))
        ]
        if left:
            print("still running without their supervisor: " + ", ".join(left))
        return ExitCode.NO_LAB
    print(f"\nsupervisor pid {state['runner_pid']}")
    return ExitCode.OK


def ps_table(processes: dict[str, Any], now: float) -> str:
    rows = [("NAME", "PID", "STATE", "RESTARTS", "UP", "LAST EXIT")]
    for name, process in processes.items():
        up = ""
        if process["pid"] is not None and process.get("started_at"):
            up = f"{now - process['started_at']:.0f}s"
        rows.append(
            (
                name,
                str(process["pid"] or "-"),
                process["state"],
                str(process["restarts"]),
                up,
                process.get("last_exit") or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
