"""`yubin send`: compose a message (or take a prepared one) and submit it with AUTH over SMTP submission.

STARTTLS is used whenever the server offers it (`--starttls require` refuses to go on without it). The
server's final reply (`250 2.0.0 ... queued as <queue id>`) is printed; `--json` prints it as JSON.
"""

import argparse
import getpass
import json
import mimetypes
import os
import smtplib
import socket
import ssl
import sys
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path

from yubin.cli.errors import CliError, ExitCode
from yubin.cli.lab_endpoints import add_lab_options, load_lab, site_of, split_hostport, user_password
from yubin.cli.progress import Progress
from yubin.cli.tls import client_context

PASSWORD_ENV = "YUBIN_PASSWORD"
PROGRESS_THRESHOLD = 256 * 1024
CHUNK = 64 * 1024


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "send",
        help="send a message through a submission server",
        description="Send a message through a submission server (AUTH, STARTTLS when offered). The body "
        "comes from TEXT, --body-file, or stdin when it is not a terminal.",
        epilog="example: yubin send --lab --from alice@alpha.test --to bob@beta.test --subject hi 'Hello Bob'",
    )
    parser.add_argument("text", nargs="*", metavar="TEXT", help="body text (words are joined by spaces)")
    parser.add_argument("--from", dest="sender", required=True, metavar="ADDRESS", help="sender address")
    parser.add_argument("--to", action="append", default=[], metavar="ADDRESS", help="recipient (repeatable)")
    parser.add_argument("--cc", action="append", default=[], metavar="ADDRESS", help="Cc recipient")
    parser.add_argument(
        "--bcc", action="append", default=[], metavar="ADDRESS", help="Bcc recipient (no header)"
    )
    parser.add_argument("--subject", default="", help="Subject header")
    parser.add_argument("--body-file", type=Path, metavar="PATH", help="read the body from PATH ('-': stdin)")
    parser.add_argument(
        "--attach", action="append", default=[], type=Path, metavar="PATH", help="attach a file (repeatable)"
    )
    parser.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="extra header (repeatable)"
    )
    parser.add_argument(
        "--raw",
        type=Path,
        metavar="PATH",
        help="send this prepared RFC 5322 message as it is ('-': stdin); --to gives the envelope recipients",
    )
    server = parser.add_argument_group("server")
    server.add_argument("--server", metavar="HOST:PORT", help="submission server (default port 587)")
    server.add_argument("--user", help="login name (default: the --from address)")
    server.add_argument(
        "--password",
        help=f"password (default: ${PASSWORD_ENV}, the lab's password with --lab, else a prompt)",
    )
    server.add_argument(
        "--starttls",
        choices=("auto", "require", "never"),
        default="auto",
        help="use STARTTLS when offered (auto), insist on it (require), or not (never)",
    )
    server.add_argument("--ca-file", type=Path, help="verify the server certificate against this CA")
    server.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default 60)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_lab_options(parser)
    parser.set_defaults(handler=run)


def read_source(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc


def body_text(args: argparse.Namespace) -> str:
    if args.text:
        return " ".join(args.text) + "\n"
    if args.body_file is not None:
        return read_source(args.body_file).decode("utf-8", errors="replace")
    if not sys.stdin.isatty():
        return sys.stdin.read()
    return ""


def compose(args: argparse.Namespace) -> EmailMessage:
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = args.sender
    if args.to:
        message["To"] = ", ".join(args.to)
    if args.cc:
        message["Cc"] = ", ".join(args.cc)
    message["Subject"] = args.subject
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise CliError(f"--header needs 'NAME: VALUE', got {header!r}", ExitCode.USAGE)
        try:
            message[name.strip()] = value.strip()
        except ValueError as exc:  # e.g. a second Subject
            raise CliError(f"--header {header!r}: {exc}", ExitCode.USAGE) from exc
    if "Date" not in message:
        message["Date"] = formatdate(localtime=True)
    if "Message-ID" not in message:
        message["Message-ID"] = make_msgid(domain=args.sender.rpartition("@")[2] or None)
    message.set_content(body_text(args))
    for path in args.attach:
        data = read_source(path)
        kind, _ = mimetypes.guess_type(path.name)
        maintype, _, subtype = (kind or "application/octet-stream").partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)
    return message


class ProgressSMTP(smtplib.SMTP):
    """smtplib sends DATA in one sendall; large messages go in chunks so progress can be shown."""

    def send(self, s: bytes | str) -> None:
        data = s.encode("ascii") if isinstance(s, str) else s
        if len(data) < PROGRESS_THRESHOLD or self.sock is None:
            return super().send(data)
        progress = Progress("sending", len(data))
        try:
            for start in range(0, len(data), CHUNK):
                chunk = data[start : start + CHUNK]
                self.sock.sendall(chunk)
                progress.advance(len(chunk))
        except OSError as exc:
            self.close()
            raise smtplib.SMTPServerDisconnected("Server not connected") from exc
        progress.finish()
        return None


def reply_error(code: int, text: bytes | str, what: str) -> CliError:
    message = text.decode(errors="replace") if isinstance(text, bytes) else text
    exit_code = ExitCode.TEMPORARY if 400 <= code < 500 else ExitCode.REJECTED
    return CliError(f"{what}: {code} {message}", exit_code)


def connection(args: argparse.Namespace) -> tuple[str, int, str, str, Path | None]:
    """(host, port, user, password, ca_file) from the flags, the lab and the environment."""
    user = args.user or args.sender
    password = args.password or os.environ.get(PASSWORD_ENV)
    ca_file = args.ca_file
    if args.lab:
        info = load_lab(args.lab_info)
        site = site_of(info, user)
        server = args.server or site["submission"]
        password = password or user_password(site, user)
        if ca_file is None and info.get("tls_cert"):
            ca_file = Path(info["tls_cert"])
    elif args.server:
        server = args.server
    else:
        raise CliError("say where to send: --server HOST:PORT, or --lab", ExitCode.USAGE)
    if password is None:
        password = getpass.getpass(f"password for {user}: ")
    host, port = split_hostport(server, 587)
    return host, port, user, password, ca_file


def login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH PLAIN once when offered. smtplib's login() tries the next mechanism after a 535, so one wrong
    password would count as two failed logins against the server's throttling."""
    if "PLAIN" in smtp.esmtp_features.get("auth", "").upper().split():
        smtp.user, smtp.password = user, password  # what smtplib's auth_plain sends
        smtp.auth("PLAIN", smtp.auth_plain)
    else:
        smtp.login(user, password)


def submit(
    host: str,
    port: int,
    user: str,
    password: str,
    sender: str,
    recipients: list[str],
    data: bytes,
    *,
    starttls: str = "auto",
    ca_file: Path | None = None,
    timeout: float = 60.0,
) -> tuple[str, dict[str, tuple[int, bytes]]]:
    """Submit one message; returns the final reply text and the refused recipients."""
    try:
        with ProgressSMTP(host, port, timeout=timeout) as smtp:
            smtp.ehlo()
            if starttls != "never" and smtp.has_extn("starttls"):
                smtp.starttls(context=client_context(ca_file))
                smtp.ehlo()
            elif starttls == "require":
                raise CliError(f"{host}:{port} does not offer STARTTLS", ExitCode.REJECTED)
            try:
                login(smtp, user, password)
            except smtplib.SMTPAuthenticationError as exc:
                if 400 <= exc.smtp_code < 500:
                    raise reply_error(exc.smtp_code, exc.smtp_error, "login refused") from exc
                raise CliError(
                    f"login failed for {user}: {exc.smtp_code} {exc.smtp_error.decode(errors='replace')}",
                    ExitCode.AUTH_FAILED,
                ) from exc
            except smtplib.SMTPNotSupportedError as exc:
                raise CliError(
                    f"{host}:{port} offers no AUTH on this connection (try --starttls require)",
                    ExitCode.REJECTED,
                ) from exc
            code, reply = smtp.mail(sender)
            if code != 250:
                raise reply_error(code, reply, f"sender {sender} refused")
            refused: dict[str, tuple[int, bytes]] = {}
            for recipient in recipients:
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    refused[recipient] = (code, reply)
            if len(refused) == len(recipients):
                code, reply = next(iter(refused.values()))
                smtp.rset()
                raise reply_error(code, reply, "every recipient refused")
            code, reply = smtp.data(data)
            if code != 250:
                raise reply_error(code, reply, "message refused")
            return f"{code} {reply.decode(errors='replace')}", refused
    except smtplib.SMTPServerDisconnected as exc:
        raise CliError(f"{host}:{port} closed the connection: {exc}", ExitCode.TEMPORARY) from exc
    except smtplib.SMTPResponseException as exc:
        raise reply_error(exc.smtp_code, exc.smtp_error, "server error") from exc
    except ssl.SSLError as exc:
        raise CliError(f"TLS with {host}:{port} failed: {exc}", ExitCode.UNAVAILABLE) from exc
    except (ConnectionError, TimeoutError, socket.gaierror, OSError) as exc:
        raise CliError(f"cannot talk to {host}:{port}: {exc}", ExitCode.UNAVAILABLE) from exc


def run(args: argparse.Namespace) -> int:
    if args.raw is not None:
        data = read_source(args.raw)
    else:
        data = compose(args).as_bytes()
    recipients = [*args.to, *args.cc, *args.bcc]
    if not recipients:
        raise CliError("no recipient: give --to (or --cc/--bcc)", ExitCode.USAGE)
    host, port, user, password, ca_file = connection(args)
    reply, refused = submit(
        host,
        port,
        user,
        password,
        args.sender,
        recipients,
        data,
        starttls=args.starttls,
        ca_file=ca_file,
        timeout=args.timeout,
    )
    queue_id = reply.rsplit("queued as ", 1)[-1].strip() if "queued as " in reply else None
    if args.json:
        print(
            json.dumps(
                {
                    "reply": reply,
                    "queue_id": queue_id,
                    "refused": {r: f"{c} {t.decode(errors='replace')}" for r, (c, t) in refused.items()},
                }
            )
        )
    else:
        for recipient, (code, text) in refused.items():
            print(f"refused {recipient}: {code} {text.decode(errors='replace')}", file=sys.stderr)
        print(f"sent: {reply}")
    return ExitCode.REJECTED if refused else ExitCode.OK
