"""The server-side TLS context for STARTTLS (RFC 3207), from the certificate and key in the settings."""

import ssl

from shared.config.submission import SubmissionSettings


def server_tls_context(settings: SubmissionSettings) -> ssl.SSLContext | None:
    """None when no certificate is configured: STARTTLS is then not offered."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context
