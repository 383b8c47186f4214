"""`python -m bench` (`make bench`): measure the lab; the median of several runs, as JSON and a table.

Burst mode: N messages (default 2000 x ~4 KB) over C sessions (default 8) as fast as the lab takes them.
Paced mode: messages at a fixed rate (default 100 msg/s), for latency without queueing.
The Yubin lab is the running one (`make lab`, or --lab-info) or, if none runs, one started for the
benchmark on free ports in a temporary directory. When the reference Postfix + Dovecot lab
(`make bench-reference`, bench/reference_lab.py) is up, or with --reference, it is measured the same way.
"""

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.cpu import lab_processes
from bench.load import run_once
from bench.report import cpu_table, figures, median_figures, table
from bench.targets import Target, reference_lab_up, reference_target, yubin_target
from yubin.lab.config import default_lab_dir
from yubin.lab.info import LabNotRunning, read_info

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--count", type=int, default=2000, help="messages per burst run (default 2000)")
    parser.add_argument("--size", type=int, default=4096, help="message size in octets (default 4096)")
    parser.add_argument(
        "-c", "--sessions", type=int, default=8, help="concurrent SMTP (and POP3) sessions (default 8)"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per mode; the median is reported (default 3)"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="paced mode rate in msg/s (default 100)")
    parser.add_argument("--paced-count", type=int, default=1000, help="messages per paced run (default 1000)")
    parser.add_argument("--modes", default="burst,paced", help="burst, paced or both (default burst,paced)")
    parser.add_argument(
        "--lab-info", type=Path, help="benchmark this running lab (default: ./lab if it runs)"
    )
    parser.add_argument("--new-lab", action="store_true", help="always start a lab for the benchmark")
    parser.add_argument(
        "--lab-set",
        action="append",
        default=[],
        metavar="YUBIN_NAME=VALUE",
        help="a setting for the lab the benchmark starts (e.g. YUBIN_RELAY_STARTTLS=false)",
    )
    parser.add_argument("--reference", choices=("auto", "yes", "no"), default="auto",
                        help="also measure the reference lab: if it is up (auto), always, never")  # fmt: skip
    parser.add_argument("--only-reference", action="store_true", help="measure only the reference lab")
    parser.add_argument(
        "--starttls", action="store_true", help="use STARTTLS on submission (off: like the reference lab)"
    )
    parser.add_argument(
        "--json-out", type=Path, help="write the JSON here (default bench/results/<time>.json)"
    )
    return parser.parse_args()


@contextmanager
def yubin_lab(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    if args.lab_info is not None:
        yield read_info(args.lab_info)
        return
    if not args.new_lab:
        try:
            yield read_info(default_lab_dir() / "lab-info.json")
            return
        except LabNotRunning:
            pass
    with tempfile.TemporaryDirectory(prefix="yubin-bench-") as lab_dir:
        info_file = Path(lab_dir) / "lab-info.json"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "yubin.cli",
                "lab",
                "up",
                "--free-ports",
                "--lab-dir",
                lab_dir,
                *(f"--set={setting}" for setting in args.lab_set),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"the benchmark's lab did not start (see {lab_dir}/lab.log)")
                try:
                    info = read_info(info_file)
                    if info.get("runner_pid") == proc.pid:
                        break
                except LabNotRunning:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the benchmark's lab did not come up in 120 s")
                time.sleep(0.2)
            print(f"started a lab for the benchmark in {lab_dir}", file=sys.stderr)
            yield info
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)


def measure(
    target: Target, args: argparse.Namespace, mode: str, pids: dict[str, int] | None = None
) -> dict[str, Any]:
    runs = []
    for index in range(args.runs):
        if mode == "burst":
            result = run_once(
                target, count=args.count, size=args.size, sessions=args.sessions, starttls=args.starttls,
                pids=pids,
            )  # fmt: skip
        else:
            result = run_once(
                target, count=args.paced_count, size=args.size, sessions=args.sessions, rate=args.rate,
                starttls=args.starttls, pids=pids,
            )  # fmt: skip
        run = figures(result)
        runs.append(run)
        print(
            f"{target.name} {mode} run {index + 1}/{args.runs}: end-to-end {run['end_to_end_rate']:.0f} msg/s, "
            f"p99 {run['latency_p99_ms']:.0f} ms, missing {run['missing']}"
            + (f", CPU {run['cpu_ms_per_message']['total']:.2f} ms/msg" if run["cpu_ms_per_message"] else ""),
            file=sys.stderr,
        )
    return {
        "runs": runs,
        "median": median_figures(runs),
        "settings": {k: v for k, v in asdict(result).items() if k in ("count", "size", "sessions", "rate")},
    }


def main() -> int:
    args = arguments()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    with_reference = (
        args.only_reference or args.reference == "yes" or (args.reference == "auto" and reference_lab_up())
    )
    results: dict[str, dict[str, Any]] = {mode: {} for mode in modes}
    if not args.only_reference:
        with yubin_lab(args) as info:
            target = yubin_target(info, args.sessions)
            for mode in modes:
                results[mode]["yubin"] = measure(target, args, mode, lab_processes(info))
    if with_reference:
        target = reference_target(args.sessions)
        for mode in modes:
            results[mode]["reference"] = measure(target, args, mode)
    output = {"modes": results, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    path = args.json_out or RESULTS_DIR / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(output, indent=2))
    print(
        json.dumps(
            {mode: {name: r["median"] for name, r in by.items()} for mode, by in results.items()}, indent=2
        )
    )
    print()
    print(
        table(
            {
                f"{mode} (median of {args.runs})": {name: r["median"] for name, r in by.items()}
                for mode, by in results.items()
            }
        )
    )
    for mode, by in results.items():
        if "yubin" in by:
            median = by["yubin"]["median"]
            print(cpu_table(f"yubin CPU, {mode}", median["cpu_ms_per_message"]))
            print(cpu_table(f"yubin CPU, {mode}, POP3 drain", median["pop3_cpu_ms_per_message"]))
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
