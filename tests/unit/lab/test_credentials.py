"""Lab credentials survive a restart; the certificate names both sites."""

import ssl
import subprocess
from pathlib import Path

from yubin.lab.certs import ensure_certificate
from yubin.lab.config import lab_config
from yubin.lab.credentials import load_or_create, new_password


def test_passwords_and_tokens_are_stable_across_restarts(tmp_path: Path) -> None:
    config = lab_config(tmp_path, standard_ports=False)
    first = load_or_create(config)
    second = load_or_create(config)
    assert first == second
    assert set(first["alpha.test"].users) == {"alice@alpha.test"}
    assert set(first["beta.test"].users) == {"bob@beta.test"}
    assert first["alpha.test"].admin_token != first["beta.test"].admin_token
    assert (tmp_path / "credentials.json").stat().st_mode & 0o077 == 0


def test_certificate_covers_both_sites_and_is_kept(tmp_path: Path) -> None:
    config = lab_config(tmp_path, standard_ports=False)
    cert, key = ensure_certificate(config)
    text = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in ("mx.alpha.test", "mx.beta.test", "127.0.3.10", "127.0.3.20"):
        assert name in text
    context = ssl.create_default_context(cafile=str(cert))
    context.load_cert_chain(cert, key)
    before = cert.read_bytes()
    ensure_certificate(config)
    assert cert.read_bytes() == before


def test_passwords_are_letters_and_digits_so_no_command_line_reads_one_as_an_option() -> None:
    passwords = [new_password() for _ in range(2000)]
    assert all(p.isascii() and p.isalnum() and len(p) == 16 for p in passwords)
    assert len(set(passwords)) == len(passwords)
