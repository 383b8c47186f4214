# CI stand-in for the redis, haproxy, coredns and prometheus images (no registry here): Debian's
# redis-server, haproxy and prometheus, and NSD serving the same RFC 1035 zone files CoreDNS serves
# (infra/ci/docker-compose.ci.yml).
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        redis-server redis-tools nsd haproxy prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data
