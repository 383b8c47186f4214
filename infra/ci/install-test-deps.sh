#!/usr/bin/env bash
# Install, on a fresh Debian 12 machine, the real servers and clients the test suite talks to, checking
# what each test asks of a tool (a capability) rather than whether a command of that name exists.
# Run as root by .ci/run; `--check` only reports what is missing and exits 1 if anything is.
set -euo pipefail

need=()
want() { need+=("$@"); }

redis-server --version >/dev/null 2>&1 || want redis-server
{ command -v nsd >/dev/null || [ -x /usr/sbin/nsd ]; } || want nsd
# swaks --tls needs Net::SSLeay and IO::Socket::SSL; without them it prints "TLS not available".
command -v swaks >/dev/null || want swaks
perl -MNet::SSLeay -MIO::Socket::SSL -e1 >/dev/null 2>&1 || want libnet-ssleay-perl libio-socket-ssl-perl
# curl must speak pop3:// and pop3s:// (the POP3 tests fetch with it).
curl --version 2>/dev/null | grep -qw pop3s || want curl
command -v mpop >/dev/null || want mpop
command -v openssl >/dev/null || want openssl
# HAProxy in front of the SMTP and POP3 listeners (tests/fixtures/haproxy.py): it must accept a server line
# sending the PROXY protocol v2 from a chosen source address (exit 2: valid, but no listener in the probe).
haproxy_sends_proxy_v2() {
    local rc=0
    printf 'defaults\n mode tcp\n timeout connect 1s\n timeout client 1s\n timeout server 1s\nbackend probe\n server s 127.0.0.1:1 send-proxy-v2 source 127.0.0.10\n' \
        | "$(command -v haproxy || echo /usr/sbin/haproxy)" -c -q -f /dev/stdin >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ]
}
haproxy_sends_proxy_v2 || want haproxy
# Python's venv module (Debian splits it out of python3 when the system Python is used).
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || want python3-venv
command -v make >/dev/null || want make
# The Kubernetes manifests are rendered with `kubectl kustomize` (tests/unit/deploy).
kubectl kustomize --help >/dev/null 2>&1 || want kubernetes-client
[ -s /etc/ssl/certs/ca-certificates.crt ] || want ca-certificates

if [ ${#need[@]} -eq 0 ]; then
    echo "install-test-deps: everything the tests need is here"
    exit 0
fi
if [ "${1:-}" = --check ]; then
    echo "install-test-deps: missing: ${need[*]}"
    exit 1
fi
echo "install-test-deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Prove the capabilities now, so a missing one fails here with its name and not in the middle of a test.
exec "$0" --check
