"""A self-signed TLS certificate for the lab's STARTTLS (SMTP) and STLS (POP3), made with openssl.

One certificate covers both sites: it names every site's MX host and loopback address, so a client that
is given the certificate as its CA (`yubin --lab` does this) can verify the server it talks to.
"""

import shutil
import subprocess
from pathlib import Path

from yubin.lab.config import LabConfig


class CertificateError(RuntimeError):
    pass


def subject_alt_names(config: LabConfig) -> list[str]:
    names = ["DNS:localhost", "IP:127.0.0.1"]
    for site in config.sites:
        names += [f"DNS:{site.mx_host}", f"DNS:{site.domain}", f"IP:{site.address}"]
    return names


def ensure_certificate(config: LabConfig) -> tuple[Path, Path]:
    """(cert, key); created once and then kept, so clients that trusted it keep trusting it."""
    cert, key = config.cert_file, config.key_file
    if cert.exists() and key.exists():
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertificateError("openssl is not installed (Debian package: openssl)")
    config.tls_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            # ECDSA P-256: a TLS handshake costs the server a fraction of an RSA-2048 one, and every
            # STARTTLS between the relay and the other site's MX pays it.
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-sha256", "-days", "3650",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/O=Yubin lab/CN=yubin-lab",
            "-addext", "subjectAltName=" + ",".join(subject_alt_names(config)),
            "-addext", "basicConstraints=critical,CA:TRUE",
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise CertificateError(f"openssl failed: {result.stderr.strip()}")
    key.chmod(0o600)
    return cert, key
