#!/bin/sh
# The compose lab's self-signed certificate for STARTTLS (submission, MX) and STLS (POP3), made once into
# the `tls` volume and then kept, as `make lab` does (yubin/lab/certs.py). It is its own CA: a client given
# cert.pem as its CA file can verify both sites' servers.
#   docker compose run --rm tls cat /var/lib/yubin/tls/cert.pem > yubin-compose-ca.pem
set -eu
dir=${1:-/var/lib/yubin/tls}
if [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ]; then
    exit 0
fi
umask 077
names="DNS:localhost,IP:127.0.0.1"
names="$names,DNS:mx.alpha.test,DNS:alpha.test,IP:10.127.3.10"
names="$names,DNS:mx.beta.test,DNS:beta.test,IP:10.127.3.20"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -keyout "$dir/key.pem.tmp" -out "$dir/cert.pem.tmp" \
    -subj "/O=Yubin lab/CN=yubin-lab" \
    -addext "subjectAltName=$names" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
chmod 644 "$dir/cert.pem.tmp"
mv "$dir/key.pem.tmp" "$dir/key.pem"
mv "$dir/cert.pem.tmp" "$dir/cert.pem"
echo "made $dir/cert.pem"
