"""TLS contexts for STARTTLS (SMTP) and STLS (POP3).

With `--ca-file` (given automatically with `--lab`: the lab's self-signed certificate) the server is
verified; without it the connection is encrypted but not authenticated, which is what a lab on loopback
with a self-signed certificate allows.
"""

import ssl
from pathlib import Path


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    if ca_file is not None:
        return ssl.create_default_context(cafile=str(ca_file))
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
