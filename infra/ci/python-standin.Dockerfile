# CI stand-in for the official python:3.11-slim image, which cannot be pulled here (no registry).
# Debian bookworm's python3 is 3.11. The host's CA bundle is trusted so that pip, run inside a build
# container, can verify TLS the way the host does. Users' builds never see this image.
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-pip python3-venv python-is-python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY host-ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1
CMD ["python3"]
