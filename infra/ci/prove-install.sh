#!/usr/bin/env bash
# Prove that .ci/run's install step is enough on a machine where nothing was installed by hand: debootstrap
# a fresh Debian 12 root, run infra/ci/install-test-deps.sh in it (chroot), install Yubin there and run the
# tests that need the installed tools (swaks with STARTTLS, NSD, curl/mpop against POP3).
#
#   sudo infra/ci/prove-install.sh [WORKDIR] [pytest args...]
#
# Needs root and debootstrap; takes about 4 minutes. The chroot shares this machine's network, so apt and
# pip reach the same registries as CI. WORKDIR (default: a new temporary folder) is removed at the end.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d /tmp/yubin-prove.XXXXXX)}
shift || true
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/integration/submission/test_submission.py tests/integration/test_dns_zones.py
    tests/integration/pop3/test_login.py tests/integration/pop3/test_retrieve.py)
mirror=${DEBIAN_MIRROR:-$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' |
    grep -v security | head -n1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}
root=$work/root

cleanup() {
    umount "$root/dev" "$root/proc" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "prove-install: debootstrap bookworm (minbase) into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
cp /etc/resolv.conf "$root/etc/resolv.conf"
# pip in the chroot verifies TLS with this machine's CA bundle, as CI's pip does.
cp /etc/ssl/certs/ca-certificates.crt "$root/root/host-ca.crt"
git -C "$repo" ls-files -z | tar -C "$repo" --null -T - -c | { mkdir -p "$root/work/yubin" && tar -C "$root/work/yubin" -x; }
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    PIP_CERT=/root/host-ca.crt bash -c "cd /work/yubin && $1"; }
echo "prove-install: infra/ci/install-test-deps.sh in the fresh root"
in_root "infra/ci/install-test-deps.sh"
echo "prove-install: make install and ${tests[*]}"
in_root "make install >/dev/null && .venv/bin/pytest -q -p no:cacheprovider ${tests[*]}"
echo "prove-install: ok"
