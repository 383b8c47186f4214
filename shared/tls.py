"""The server-side TLS context for STARTTLS (SMTP, RFC 3207) and STLS (POP3, RFC 2595)."""

import ssl
from pathlib import Path


def server_tls_context(cert_file: Path | str | None, key_file: Path | str | None) -> ssl.SSLContext | None:
    """None when no certificate is configured: the server then does not offer STARTTLS/STLS."""
    if cert_file is None or key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context
