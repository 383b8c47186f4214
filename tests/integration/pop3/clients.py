"""Real POP3 clients for the tests: a raw socket (to send exactly what we want), curl and mpop."""

import os
import socket
import ssl
import subprocess
from pathlib import Path

from tests.fixtures.binaries import require_binary


class RawClient:
    """A line-oriented conversation over a plain socket: for pipelining, garbage and wrong-state tests."""

    def __init__(self, host: str, port: int, timeout: float = 10.0, source: str | None = None) -> None:
        """`source`: the loopback address to connect from (the auth service throttles per address)."""
        source_address = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=source_address)
        self.file = self.sock.makefile("rb")
        self.greeting = self.line()

    def start_tls(self, trust: Path) -> None:
        """The client side of STLS, after the server's +OK."""
        context = ssl.create_default_context(cafile=str(trust))
        self.file.close()
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        """One response line without CRLF; b"" once the server closed the connection."""
        return self.file.readline().rstrip(b"\r\n")

    def command(self, text: str) -> bytes:
        self.send(text.encode() + b"\r\n")
        return self.line()

    def multiline(self) -> list[bytes]:
        """The lines of a multi-line response after its status line, un-stuffed, without the final '.'."""
        lines = []
        while (line := self.file.readline()) != b".\r\n":
            assert line, "connection closed inside a multi-line response"
            lines.append(line[:-2][1:] if line.startswith(b".") else line[:-2])
        return lines

    def closed(self) -> bool:
        """True if the server closed the connection (EOF)."""
        return self.file.read() == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def curl(url: str, user: str, password: str, *extra: str) -> subprocess.CompletedProcess[bytes]:
    """`curl pop3://...`: RETR when the URL names a message, LIST otherwise."""
    binary = require_binary("curl", "curl")
    return subprocess.run(
        [binary, "-sS", "--max-time", "30", "-u", f"{user}:{password}", *extra, url],
        capture_output=True,
        timeout=60,
    )


def mpop(
    directory: Path,
    port: int,
    user: str,
    password: str,
    *,
    keep: bool = True,
    tls: tuple[Path, bool] | None = None,
    auth: str = "user",
) -> tuple[subprocess.CompletedProcess[bytes], list[bytes]]:
    """Fetch with mpop into files (one per message, via an MDA that copies stdin), return them in order.

    `tls=(trust_file, starttls)` turns on TLS. mpop hands messages to the MDA with LF line endings.
    """
    binary = require_binary("mpop", "mpop")
    out = directory / "fetched"
    out.mkdir(parents=True, exist_ok=True)
    config = directory / "mpoprc"
    lines = [
        "defaults",
        "account test",
        "host 127.0.0.1",
        f"port {port}",
        f"user {user}",
        f"password {password}",
        f"auth {auth}",
        f"keep {'on' if keep else 'off'}",
        f"uidls_file {directory / 'uidls'}",
        # %F would be the envelope sender; a counter file keeps the fetch order visible in the names.
        f'delivery mda "n=$(ls {out} | wc -l); cat > {out}/$(printf %05d $n)"',
        "received_header off",
        "timeout 20",
    ]
    if tls is None:
        lines.append("tls off")
    else:
        trust, starttls = tls
        lines += ["tls on", f"tls_starttls {'on' if starttls else 'off'}", f"tls_trust_file {trust}"]
    config.write_text("\n".join(lines) + "\n")
    os.chmod(config, 0o600)  # mpop refuses a config with a password that others can read
    result = subprocess.run([binary, f"--file={config}", "--quiet", "test"], capture_output=True, timeout=60)
    return result, [p.read_bytes() for p in sorted(out.iterdir())]
