"""`yubin` without servers: help everywhere, message composition, exit codes for the failures it can tell."""

import argparse
import os
import subprocess
import sys
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

from tests.fixtures.ports import free_port
from yubin.cli.main import main, parser
from yubin.cli.send import compose

COMMANDS = [
    [],
    ["send"],
    ["fetch"],
    ["users"],
    ["users", "add"],
    ["users", "set"],
    ["users", "list"],
    ["users", "show"],
    ["users", "delete"],
    ["domains"],
    ["domains", "add"],
    ["domains", "list"],
    ["domains", "delete"],
    ["queue"],
    ["queue", "dead"],
    ["queue", "dead", "list"],
    ["queue", "dead", "show"],
    ["queue", "dead", "retry"],
    ["queue", "dead", "delete"],
    ["aliases"],
    ["aliases", "add"],
    ["aliases", "list"],
    ["aliases", "show"],
    ["aliases", "delete"],
    ["lab"],
    ["lab", "up"],
    ["lab", "info"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "yubin")
def test_every_command_has_help(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: yubin" in capsys.readouterr().out


def run(*args: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "yubin.cli", *args],
        capture_output=True,
        input=stdin,
        env={**os.environ, "YUBIN_LAB_INFO": "", **(env or {})},
        timeout=30,
    )


def test_no_running_lab_is_exit_code_7(tmp_path: Path) -> None:
    result = run("lab", "info", env={"YUBIN_LAB_DIR": str(tmp_path)})
    assert result.returncode == 7
    assert b"make lab" in result.stderr


def test_nowhere_to_send_is_a_usage_error() -> None:
    result = run("send", "--from", "a@alpha.test", "--to", "b@beta.test", "hi")
    assert result.returncode == 2
    assert b"--server" in result.stderr


def test_connection_refused_is_exit_code_3() -> None:
    port = free_port()  # nothing listens there
    result = run("send", "--server", f"127.0.0.1:{port}", "--from", "a@alpha.test", "--to", "b@beta.test",
                 "--password", "x", "hi")  # fmt: skip
    assert result.returncode == 3, result.stderr
    result = run("fetch", "--server", f"127.0.0.1:{port}", "--user", "b@beta.test", "--password", "x")
    assert result.returncode == 3, result.stderr
    result = run("users", "list", "--admin-url", f"http://127.0.0.1:{port}", "--token", "t")
    assert result.returncode == 3, result.stderr


def test_missing_attachment_is_exit_code_1(tmp_path: Path) -> None:
    result = run("send", "--server", "127.0.0.1:1", "--from", "a@alpha.test", "--to", "b@beta.test",
                 "--attach", str(tmp_path / "missing.pdf"), "hi")  # fmt: skip
    assert result.returncode == 1
    assert b"missing.pdf" in result.stderr


def composed(*args: str) -> bytes:
    namespace = parser().parse_args(["send", "--server", "x:1", *args])
    assert isinstance(namespace, argparse.Namespace)
    return compose(namespace).as_bytes()


def test_composed_message_has_headers_body_and_attachment(tmp_path: Path) -> None:
    attachment = tmp_path / "report.pdf"
    attachment.write_bytes(bytes(range(256)) * 10)
    data = composed("--from", "alice@alpha.test", "--to", "bob@beta.test", "--cc", "carol@beta.test",
                    "--subject", "Grüße", "--header", "X-Test: 1", "--attach", str(attachment),
                    "Hello", "Bob")  # fmt: skip
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")  # CRLF only, as SMTP wants
    message = message_from_bytes(data, policy=default_policy)
    assert message["Subject"] == "Grüße"
    assert message["To"] == "bob@beta.test" and message["Cc"] == "carol@beta.test"
    assert message["X-Test"] == "1" and message["Message-ID"].endswith("@alpha.test>")
    assert message.get_body(preferencelist=("plain",)).get_content().strip() == "Hello Bob"
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == attachment.read_bytes()


def test_a_malformed_header_is_a_usage_error() -> None:
    result = run("send", "--server", "127.0.0.1:1", "--from", "a@alpha.test", "--to", "b@beta.test",
                 "--header", "no colon here", "hi")  # fmt: skip
    assert result.returncode == 2
