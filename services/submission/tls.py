"""STARTTLS (RFC 3207) for both roles, from the certificate and key in the settings."""

import ssl

from shared.config.submission import SubmissionSettings
from shared.tls import server_tls_context as _context


def server_tls_context(settings: SubmissionSettings) -> ssl.SSLContext | None:
    """None when no certificate is configured: STARTTLS is then not offered."""
    return _context(settings.tls_cert_file, settings.tls_key_file)
