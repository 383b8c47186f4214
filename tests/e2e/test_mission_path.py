"""The mission: alice@alpha.test sends, alpha's relay finds beta.test's MX through DNS, beta's MX accepts,
beta's delivery files it, bob fetches it over POP3 — with yubin, swaks and curl as the clients."""

import json
import os
import subprocess

from tests.e2e.conftest import Lab
from tests.e2e.mail import (
    hostport,
    messages_with,
    parse,
    received_headers,
    token,
    wait_for_message,
    yubin,
)

ALICE = "alice@alpha.test"
BOB = "bob@beta.test"


def test_yubin_send_then_yubin_fetch_gets_the_exact_message(lab: Lab, tmp_path) -> None:
    tag = token()
    body = f"Hello Bob,\n\nthis is {tag}: naïve café, 日本語.\n.a line starting with a dot\n"
    attachment = tmp_path / "data.bin"
    attachment.write_bytes(os.urandom(200_000))
    sent = yubin(
        lab, "send", "--lab", "--from", ALICE, "--to", BOB, "--subject", f"mission {tag}",
        "--attach", str(attachment), "--json", input=body.encode(),
    )  # fmt: skip
    queue_id = json.loads(sent.stdout)["queue_id"]
    assert queue_id

    wait_for_message(lab, BOB, tag)
    listing = json.loads(yubin(lab, "fetch", "--lab", "--user", BOB, "--json").stdout)
    number = next(row["number"] for row in listing if tag in row["Subject"])
    out = tmp_path / "out"
    yubin(lab, "fetch", "--lab", "--user", BOB, "--output-dir", str(out), "--delete", str(number))

    [saved] = list(out.iterdir())
    message = parse(saved.read_bytes())
    assert message["Subject"] == f"mission {tag}"
    assert message["From"] == ALICE
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert text.replace("\r\n", "\n") == body  # on the wire and in the file, lines end in CRLF
    [part] = list(message.iter_attachments())
    assert part.get_filename() == "data.bin"
    assert part.get_content() == attachment.read_bytes()
    assert message["Delivered-To"] == BOB
    assert not messages_with(lab, BOB, tag), "--delete removed it"


def test_received_headers_show_submission_relay_and_mx(lab: Lab) -> None:
    tag = token()
    yubin(lab, "send", "--lab", "--from", ALICE, "--to", BOB, "--subject", tag, "path check")
    [data] = wait_for_message(lab, BOB, tag)
    received = received_headers(data)
    # Newest first: beta's MX took it from alpha's relay; below it, alpha's submission took it from alice.
    assert len(received) >= 2, received
    mx_hop, submission_hop = received[0], received[-1]
    assert "mx.beta.test" in mx_hop and "mx.alpha.test" in mx_hop, mx_hop
    assert "mx" in mx_hop.lower()
    assert "submission" in submission_hop.lower() or "ESMTPSA" in submission_hop, submission_hop
    assert "mx.alpha.test" in submission_hop, submission_hop
    messages_with(lab, BOB, tag, delete=True)


def test_swaks_sends_and_curl_fetches_the_exact_octets(lab: Lab, tmp_path) -> None:
    tag = token()
    original = (
        f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: swaks {tag}\r\nMessage-ID: <{tag}@alpha.test>\r\n"
        f"Date: Thu, 26 Nov 2026 12:00:00 +0000\r\n\r\nfirst line\r\n..dot-stuffed on the wire\r\n"
        f"{tag}\r\n"
    ).encode()
    eml = tmp_path / "message.eml"
    # swaks ends DATA with CRLF "." CRLF after the file's content: a file without its last line break
    # makes the message on the wire exactly `original`.
    eml.write_bytes(original.removesuffix(b"\r\n"))
    host, port = hostport(lab.site("alpha.test")["submission"])
    result = subprocess.run(
        [
            "swaks", "--server", host, "--port", str(port), "--from", ALICE, "--to", BOB,
            "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", lab.password(ALICE),
            "--data", str(eml),
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "queued as" in result.stdout

    wait_for_message(lab, BOB, tag)
    pop3 = lab.site("beta.test")["pop3"]
    user = f"{BOB}:{lab.password(BOB)}"
    listing = subprocess.run(
        ["curl", "-sS", "--max-time", "30", "--user", user, f"pop3://{pop3}/"],
        capture_output=True, check=True, timeout=60,
    ).stdout.decode()  # fmt: skip
    numbers = [line.split()[0] for line in listing.splitlines() if line.strip()]
    bodies = [
        subprocess.run(
            ["curl", "-sS", "--max-time", "30", "--user", user, f"pop3://{pop3}/{n}"],
            capture_output=True, check=True, timeout=60,
        ).stdout
        for n in numbers
    ]  # fmt: skip
    [fetched] = [b for b in bodies if tag.encode() in b]
    # Delivery adds trace headers on top (Return-Path, Delivered-To, Received); the message itself,
    # with its dot-stuffed line, arrives octet for octet.
    assert fetched.endswith(original), fetched
    messages_with(lab, BOB, tag, delete=True)


def test_curl_sends_and_yubin_fetches(lab: Lab, tmp_path) -> None:
    tag = token()
    eml = tmp_path / "curl.eml"
    eml.write_bytes(f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: curl {tag}\r\n\r\nsent with curl\r\n".encode())
    submission = lab.site("alpha.test")["submission"]
    subprocess.run(
        [
            "curl", "-sS", "--max-time", "30", f"smtp://{submission}", "--mail-from", ALICE, "--mail-rcpt", BOB,
            "--user", f"{ALICE}:{lab.password(ALICE)}", "--upload-file", str(eml),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    wait_for_message(lab, BOB, tag)
    listing = json.loads(yubin(lab, "fetch", "--lab", "--user", BOB, "--json").stdout)
    number = next(row["number"] for row in listing if tag in row["Subject"])
    out = yubin(lab, "fetch", "--lab", "--user", BOB, "--stdout", "--delete", str(number)).stdout
    assert b"sent with curl" in out and f"curl {tag}".encode() in out


def test_yubin_trace_follows_the_message_across_both_sites(lab: Lab) -> None:
    tag = token()
    message_id = f"<{tag}@alpha.test>"
    yubin(
        lab, "send", "--lab", "--from", ALICE, "--to", BOB, "--header", f"Message-ID: {message_id}", "traced"
    )
    wait_for_message(lab, BOB, tag)
    lines = yubin(lab, "trace", "--lab", "--json", message_id).stdout.decode().splitlines()
    steps = [(e["site"], e["service"], e["event"]) for e in map(json.loads, lines)]
    # In time order; the relay records "delivered" once beta's MX has answered 250, so after "accepted".
    path = [
        ("alpha.test", "submission", "accepted"),
        ("alpha.test", "relay", "mx-lookup"),
        ("beta.test", "mx", "accepted"),
        ("beta.test", "delivery", "stored"),
    ]
    assert [step for step in steps if step in path] == path, steps
    assert ("alpha.test", "relay", "delivered") in steps
    messages_with(lab, BOB, tag, delete=True)
    # Bob's POP3 client took it out of his mailbox: the journey ends there.
    lines = yubin(lab, "trace", "--lab", "--json", message_id).stdout.decode().splitlines()
    steps = [(e["site"], e["service"], e["event"]) for e in map(json.loads, lines)]
    assert ("beta.test", "pop3", "retrieved") in steps, steps
    assert steps[-1] == ("beta.test", "pop3", "deleted"), steps
