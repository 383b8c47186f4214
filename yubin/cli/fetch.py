"""`yubin fetch`: a POP3 client (stdlib poplib): list the maildrop, retrieve to a directory or stdout, delete.

STLS is used whenever the server offers it. Deletions happen only when the session ends with QUIT
(RFC 1939's UPDATE state), so an interrupted fetch deletes nothing.
"""

import argparse
import getpass
import json
import os
import poplib
import ssl
import sys
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path

from yubin.cli.errors import CliError, ExitCode
from yubin.cli.lab_endpoints import add_lab_options, load_lab, site_of, split_hostport, user_password
from yubin.cli.progress import Progress
from yubin.cli.tls import client_context

PASSWORD_ENV = "YUBIN_PASSWORD"
TEMPORARY_CODES = ("[SYS/TEMP]", "[IN-USE]", "[LOGIN-DELAY]")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fetch",
        help="list, retrieve and delete messages over POP3",
        description="Fetch mail over POP3. Without --output-dir or --stdout it lists the maildrop.",
        epilog="examples: yubin fetch --lab --user bob@beta.test  (list)\n"
        "          yubin fetch --lab --user bob@beta.test -o mail/ --delete  (save as files, then delete)\n"
        "          yubin fetch --lab --user bob@beta.test --stdout 1  (print message 1)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("messages", nargs="*", type=int, metavar="N", help="message numbers (default: all)")
    parser.add_argument("--user", required=True, help="login name (the mailbox address)")
    parser.add_argument(
        "--password", help=f"password (default: ${PASSWORD_ENV}, the lab's with --lab, else a prompt)"
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("-o", "--output-dir", type=Path, help="save each message as DIR/<UIDL>.eml")
    action.add_argument("--stdout", action="store_true", help="write the messages to stdout")
    action.add_argument("--list", action="store_true", help="list the messages (the default)")
    parser.add_argument(
        "--delete", action="store_true", help="delete the messages (after saving them, if asked)"
    )
    server = parser.add_argument_group("server")
    server.add_argument("--server", metavar="HOST:PORT", help="POP3 server (default port 110)")
    server.add_argument(
        "--stls",
        choices=("auto", "require", "never"),
        default="auto",
        help="use STLS when offered (auto), insist on it (require), or not (never)",
    )
    server.add_argument("--ca-file", type=Path, help="verify the server certificate against this CA")
    server.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default 60)")
    parser.add_argument("--json", action="store_true", help="list as JSON")
    add_lab_options(parser)
    parser.set_defaults(handler=run)


def pop_error(exc: poplib.error_proto, what: str, default: ExitCode) -> CliError:
    text = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
    code = ExitCode.TEMPORARY if any(tag in text for tag in TEMPORARY_CODES) else default
    return CliError(f"{what}: {text}", code)


def login(args: argparse.Namespace) -> poplib.POP3:
    password = args.password or os.environ.get(PASSWORD_ENV)
    ca_file = args.ca_file
    if args.lab:
        info = load_lab(args.lab_info)
        site = site_of(info, args.user)
        server = args.server or site["pop3"]
        password = password or user_password(site, args.user)
        if ca_file is None and info.get("tls_cert"):
            ca_file = Path(info["tls_cert"])
    elif args.server:
        server = args.server
    else:
        raise CliError("say where to fetch from: --server HOST:PORT, or --lab", ExitCode.USAGE)
    if password is None:
        password = getpass.getpass(f"password for {args.user}: ")
    host, port = split_hostport(server, 110)
    try:
        pop = poplib.POP3(host, port, timeout=args.timeout)
    except OSError as exc:
        raise CliError(f"cannot connect to {host}:{port}: {exc}", ExitCode.UNAVAILABLE) from exc
    try:
        capabilities = capa(pop)
        if args.stls != "never" and "STLS" in capabilities:
            pop.stls(context=client_context(ca_file))
        elif args.stls == "require":
            raise CliError(f"{host}:{port} does not offer STLS", ExitCode.REJECTED)
        try:
            pop.user(args.user)
            pop.pass_(password)
        except poplib.error_proto as exc:
            raise pop_error(exc, f"login failed for {args.user}", ExitCode.AUTH_FAILED) from exc
    except ssl.SSLError as exc:
        pop.close()
        raise CliError(f"TLS with {host}:{port} failed: {exc}", ExitCode.UNAVAILABLE) from exc
    except CliError:
        pop.close()
        raise
    except (OSError, poplib.error_proto) as exc:
        pop.close()
        raise CliError(f"{host}:{port}: {exc}", ExitCode.UNAVAILABLE) from exc
    return pop


def capa(pop: poplib.POP3) -> dict[str, list[str]]:
    try:
        return pop.capa()
    except poplib.error_proto:
        return {}  # CAPA is optional (RFC 2449); an old server simply has none


def listing(pop: poplib.POP3) -> list[tuple[int, int, str]]:
    """(number, octets, uidl) of every message."""
    _, sizes, _ = pop.list()
    uids: dict[int, str] = {}
    try:
        _, lines, _ = pop.uidl()
        for line in lines:
            number, _, uid = line.decode().partition(" ")
            uids[int(number)] = uid
    except poplib.error_proto:
        pass
    result = []
    for line in sizes:
        number, _, octets = line.decode().partition(" ")
        result.append((int(number), int(octets), uids.get(int(number), "")))
    return result


def headers_of(pop: poplib.POP3, number: int) -> dict[str, str]:
    _, lines, _ = pop.top(number, 0)
    parsed = BytesHeaderParser(policy=default_policy).parsebytes(b"\r\n".join(lines) + b"\r\n")
    return {name: str(parsed.get(name, "")) for name in ("From", "Subject", "Date")}


def retrieve(pop: poplib.POP3, number: int) -> bytes:
    # poplib removes the dot-stuffing and the line endings; put CRLF back to get the message's octets.
    _, lines, _ = pop.retr(number)
    return b"\r\n".join(lines) + b"\r\n"


def run(args: argparse.Namespace) -> int:
    pop = login(args)
    try:
        messages = listing(pop)
        if args.messages:
            known = {number for number, _, _ in messages}
            missing = [n for n in args.messages if n not in known]
            if missing:
                raise CliError(
                    f"no message {', '.join(map(str, missing))} in the maildrop", ExitCode.REJECTED
                )
            messages = [m for m in messages if m[0] in set(args.messages)]
        if args.output_dir is not None or args.stdout:
            save(pop, messages, args.output_dir)
        elif not args.delete or args.list:
            show(pop, messages, args.json)
        if args.delete:
            for number, _, _ in messages:
                pop.dele(number)
        pop.quit()  # UPDATE state: only now are the deletions carried out
    except poplib.error_proto as exc:
        pop.close()
        raise pop_error(exc, "POP3 error", ExitCode.REJECTED) from exc
    except (OSError, EOFError) as exc:
        pop.close()
        raise CliError(f"connection lost: {exc}", ExitCode.UNAVAILABLE) from exc
    if args.delete:
        print(f"deleted {len(messages)} message(s)", file=sys.stderr)
    return ExitCode.OK


def show(pop: poplib.POP3, messages: list[tuple[int, int, str]], as_json: bool) -> None:
    rows = [{"number": n, "size": size, "uidl": uid, **headers_of(pop, n)} for n, size, uid in messages]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("no messages")
        return
    print(f"{'#':>4} {'size':>8}  {'from':<28} subject")
    for row in rows:
        print(f"{row['number']:>4} {row['size']:>8}  {row['From'][:28]:<28} {row['Subject']}")


def save(pop: poplib.POP3, messages: list[tuple[int, int, str]], directory: Path | None) -> None:
    progress = Progress("fetching", sum(size for _, size, _ in messages))
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    for number, size, uid in messages:
        data = retrieve(pop, number)
        if directory is None:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            name = safe_name(uid) if uid else f"message-{number}"
            path = directory / f"{name}.eml"
            path.write_bytes(data)
            print(path, file=sys.stderr if progress.enabled else sys.stdout)
        progress.advance(size)
    progress.finish()


def safe_name(uid: str) -> str:
    # A UIDL is up to 70 printable characters (RFC 1939) and could contain '/' — never a path.
    return "".join(ch if ch.isalnum() or ch in "-_.," else "_" for ch in uid).lstrip(".") or "message"
