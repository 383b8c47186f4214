"""`yubin` entry point: parse the command line, run the command, turn failures into exit codes.

Exit codes (see `yubin.cli.errors.ExitCode`): 0 ok, 1 other error, 2 usage, 3 server unreachable,
4 authentication failed, 5 refused for good, 6 temporary failure (try again), 7 no running lab,
130 interrupted.
"""

import argparse
import sys

from yubin.cli import admin, fetch, lab, queue, send, trace
from yubin.cli.errors import CliError, ExitCode

EPILOG = """exit codes:
  0  success
  1  other error (unreadable file, unexpected answer)
  2  bad command line
  3  server unreachable (connection refused, timeout, TLS failure)
  4  authentication failed
  5  refused for good (SMTP 5xx, HTTP 4xx)
  6  temporary failure, try again later (SMTP 4xx, POP3 [SYS/TEMP]/[IN-USE], throttled, HTTP 5xx)
  7  no running lab (--lab)
130  interrupted (Ctrl-C)
"""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="yubin",
        description="Yubin's mail client and admin tool: send over submission, fetch over POP3, manage "
        "users, aliases and domains, run the lab.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="area", required=True, metavar="COMMAND")
    send.add_parser(commands)
    fetch.add_parser(commands)
    admin.add_parsers(commands)
    queue.add_parser(commands)
    trace.add_parser(commands)
    lab.add_parser(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except CliError as exc:
        print(f"yubin: {exc}", file=sys.stderr)
        return int(exc.code)
    except KeyboardInterrupt:
        print("yubin: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
