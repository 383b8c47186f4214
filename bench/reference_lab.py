"""The reference lab: Postfix + Dovecot + NSD from Debian as the same two-site lab, for `make bench`.

`make bench-reference` (`python -m bench.reference_lab up`) installs Debian's postfix, dovecot-pop3d and
nsd if missing, and runs, on loopback addresses of its own (127.0.2.0/24, apart from Yubin's 127.0.3.x):

    NSD            127.0.2.53:53    the zones test., alpha.test., beta.test. (MX → mx.<site>)
    alpha.test     127.0.2.10       Postfix: MX :25, submission :587 (AUTH via Dovecot); Dovecot: POP3 :110
    beta.test      127.0.2.20       the same

Users: userN@{alpha,beta}.test with password `secret-N` (N = 1..50), hashed with SHA512-CRYPT. Mail is
filed by Postfix's virtual(8) into `<state>/<site>/mail/<domain>/<user>/` (Maildir), which Dovecot serves.
Between the sites Postfix uses opportunistic STARTTLS, as Yubin's relays do.

Written from Postfix's and Dovecot's documentation (MULTI_INSTANCE_README, VIRTUAL_README, SASL_README,
Dovecot's quick configuration); it is a benchmark peer, not a deployment guide. Two things need root and
are why this runs as root: port 53 (Postfix reads its resolver from /etc/resolv.conf, which has no port),
and the resolver itself: each Postfix runs in a mount namespace of its own (`unshare --mount`) where
/etc/resolv.conf names the lab's NSD, so the machine's own resolver is never touched.

`down` stops every process it started (by the pids it recorded); `status` prints the state as JSON.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from yubin.lab.nsd import nsd_config

STATE = Path(os.environ.get("REFLAB_STATE") or "/var/tmp/yubin-reference-lab")
INFO = STATE / "reference-lab.json"
DNS_ADDRESS = "127.0.2.53"
USERS = 50
VMAIL_USER = "yubin-reflab"
PACKAGES = {"postfix": "/usr/sbin/postfix", "dovecot-pop3d": "/usr/lib/dovecot/pop3", "nsd": "/usr/sbin/nsd"}


@dataclass(frozen=True)
class Site:
    domain: str
    address: str

    @property
    def name(self) -> str:
        return self.domain.split(".")[0]


SITES = (Site("alpha.test", "127.0.2.10"), Site("beta.test", "127.0.2.20"))


def password(n: int) -> str:
    return f"secret-{n}"


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, **kwargs)


def install() -> None:
    missing = [package for package, path in PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    print(f"reference-lab: installing {' '.join(missing)}", flush=True)
    # "No configuration": the package must not set up (or start) a default Postfix on port 25.
    subprocess.run(
        ["debconf-set-selections"], input=b"postfix postfix/main_mailer_type select No configuration\n"
    )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        *missing,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def vmail_ids() -> tuple[int, int]:
    """The owner of every Maildir: one system user for Postfix's virtual(8) and Dovecot alike."""
    if subprocess.run(["id", "-u", VMAIL_USER], capture_output=True).returncode != 0:
        run("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", VMAIL_USER)
    uid = int(run("id", "-u", VMAIL_USER, capture_output=True).stdout)
    gid = int(run("id", "-g", VMAIL_USER, capture_output=True).stdout)
    return uid, gid


def write_zones(zones: Path) -> None:
    zones.mkdir(parents=True, exist_ok=True)
    soa = "@ IN SOA ns.test. hostmaster.test. (1 3600 600 86400 60)\n@ IN NS ns.test.\n"
    root = f"$ORIGIN test.\n$TTL 60\n{soa}ns IN A {DNS_ADDRESS}\n"
    for site in SITES:
        root += f"{site.name} IN NS ns.test.\n"
    (zones / "test.zone").write_text(root)
    for site in SITES:
        (zones / f"{site.domain}.zone").write_text(
            f"$ORIGIN {site.domain}.\n$TTL 60\n{soa}@ IN MX 10 mx.{site.domain}.\nmx IN A {site.address}\n"
        )


def tls_pair(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=reference-lab",
        "-keyout", str(key), "-out", str(cert), capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{address}:smtp inet n       -       n       -       -       smtpd
{address}:submission inet n -       n       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=none
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_main_cf(site: Site, home: Path, uid: int, gid: int, cert: Path, key: Path) -> str:
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": home / "spool",
        "data_directory": home / "data",
        "maillog_file": home / "postfix.log",
        "myhostname": f"mx.{site.domain}",
        "mydomain": site.domain,
        "myorigin": site.domain,
        "mydestination": "",
        "mynetworks": f"{site.address}/32",
        "inet_interfaces": site.address,
        "inet_protocols": "ipv4",
        "smtp_bind_address": site.address,
        "virtual_mailbox_domains": site.domain,
        "virtual_mailbox_base": home / "mail",
        "virtual_mailbox_maps": f"texthash:{home / 'mailboxes'}",
        "virtual_minimum_uid": "100",
        "virtual_uid_maps": f"static:{uid}",
        "virtual_gid_maps": f"static:{gid}",
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": home / "dovecot" / "run" / "auth-postfix",
        "smtpd_sasl_auth_enable": "no",
        "smtpd_relay_restrictions": "permit_sasl_authenticated, reject_unauth_destination",
        "smtpd_tls_cert_file": cert,
        "smtpd_tls_key_file": key,
        "smtpd_tls_security_level": "may",
        "smtp_tls_security_level": "may",
        "biff": "no",
        "append_dot_mydomain": "no",
        "smtputf8_enable": "no",
        # A benchmark sends thousands of messages from 8 sessions on one address.
        "smtpd_client_connection_count_limit": "0",
        "smtpd_client_connection_rate_limit": "0",
        "smtpd_client_message_rate_limit": "0",
    }
    return "".join(f"{name} = {value}\n" for name, value in settings.items())


def dovecot_conf(site: Site, home: Path, uid: int, gid: int) -> str:
    mail = home / "mail"
    return f"""\
base_dir = {home / "dovecot" / "run"}
instance_name = reflab-{site.name}
listen = {site.address}
protocols = pop3
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {home / "dovecot.log"}
mail_location = maildir:{mail}/%d/%n
first_valid_uid = 100
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT {home / "passwd"}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%d/%n
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0666
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {site.address}
    port = 110
  }}
}}
"""


def allow_instances(configs: list[Path]) -> None:
    """Postfix runs a second instance (`postfix -c DIR`) only if the default main.cf lists DIR."""
    default = Path("/etc/postfix/main.cf")
    if not default.exists():
        # Debian's "No configuration": nothing runs from it; it only has to authorize our instances.
        default.write_text("compatibility_level = 3.6\n")
    listed = run(
        "postconf", "-h", "alternate_config_directories", capture_output=True, text=True
    ).stdout.split()
    wanted = sorted(set(listed) | {str(c) for c in configs})
    run("postconf", "-e", f"alternate_config_directories = {' '.join(wanted)}")


def with_lab_resolver(home: Path, *command: str) -> list[str]:
    """`command` in a mount namespace whose /etc/resolv.conf names the lab's NSD (see the module doc)."""
    resolv = home / "resolv.conf"
    resolv.write_text(f"nameserver {DNS_ADDRESS}\noptions attempts:1 timeout:2\n")
    script = f'mount --bind "{resolv}" /etc/resolv.conf && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *command]


def add_addresses() -> None:
    # 127.0.0.0/8 is routed to lo on Linux, but binding is only allowed to configured addresses on some
    # kernels' settings; adding them to lo is harmless where they already work.
    for address in [DNS_ADDRESS, *(site.address for site in SITES)]:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], capture_output=True)


def background(command: list[str], output: Path) -> int:
    """Start a server that outlives this command, its output in a file (not our terminal or pipe)."""
    with output.open("ab") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    return process.pid


def up() -> dict:
    if os.geteuid() != 0:
        sys.exit("reference-lab: run as root (port 53, package installs, mount namespaces)")
    if INFO.exists():
        down()
    install()
    uid, gid = vmail_ids()
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    STATE.chmod(0o755)
    add_addresses()
    pids: dict[str, int] = {}

    dns = STATE / "dns"
    write_zones(dns / "zones")
    (dns / "nsd.conf").write_text(nsd_config(dns, dns / "zones", DNS_ADDRESS, 53))
    pids["nsd"] = background(["/usr/sbin/nsd", "-d", "-c", str(dns / "nsd.conf")], dns / "nsd.out")

    cert, key = tls_pair(STATE)
    configs = [STATE / site.name / "postfix" for site in SITES]
    allow_instances(configs)
    for site in SITES:
        home = STATE / site.name
        (home / "postfix").mkdir(parents=True)
        (home / "dovecot" / "run").mkdir(parents=True)
        mail = home / "mail"
        accounts = [f"user{n}@{site.domain}" for n in range(1, USERS + 1)]
        for account in accounts:
            local = account.split("@")[0]
            for sub in ("new", "cur", "tmp"):
                (mail / site.domain / local / sub).mkdir(parents=True, exist_ok=True)
        run("chown", "-R", f"{uid}:{gid}", str(mail))
        (home / "mailboxes").write_text("".join(f"{a} {site.domain}/{a.split('@')[0]}/\n" for a in accounts))
        hashes = {}
        for n in range(1, USERS + 1):
            hashes[n] = run(
                "doveadm", "pw", "-s", "SHA512-CRYPT", "-p", password(n), capture_output=True, text=True
            ).stdout.strip()
        (home / "passwd").write_text("".join(f"user{n}@{site.domain}:{hashes[n]}\n" for n in hashes))
        (home / "dovecot.conf").write_text(dovecot_conf(site, home, uid, gid))
        pids[f"{site.name}/dovecot"] = background(
            ["dovecot", "-F", "-c", str(home / "dovecot.conf")], home / "dovecot.out"
        )

        config = home / "postfix"
        (config / "main.cf").write_text(postfix_main_cf(site, home, uid, gid, cert, key))
        (config / "master.cf").write_text(MASTER_CF.format(address=site.address))
        for directory in ("spool", "data"):
            (home / directory).mkdir()
        run("chown", "postfix:postfix", str(home / "data"))
        run(*with_lab_resolver(home, "postfix", "-c", str(config), "start"), capture_output=True)
        pids[f"{site.name}/postfix"] = int((home / "spool" / "pid" / "master.pid").read_text().split()[0])

    info = {
        "dns": f"{DNS_ADDRESS}:53",
        "sites": {
            site.domain: {
                "submission": f"{site.address}:587",
                "mx": f"{site.address}:25",
                "pop3": f"{site.address}:110",
                "mail_root": str(STATE / site.name / "mail"),
            }
            for site in SITES
        },
        "users": {"pattern": "user{N}@{domain}", "password": "secret-{N}", "count": USERS},
        "pids": pids,
    }
    INFO.write_text(json.dumps(info, indent=2))
    wait_ready()
    return info


def wait_ready(timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    endpoints = [(site.address, port) for site in SITES for port in (25, 587, 110)]
    while endpoints:
        host, port = endpoints[0]
        try:
            with socket.create_connection((host, port), timeout=0.5):
                endpoints.pop(0)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reference-lab: nothing listens on {host}:{port}") from None
            time.sleep(0.1)


def down() -> None:
    if not INFO.exists():
        return
    info = json.loads(INFO.read_text())
    for site in SITES:
        config = STATE / site.name / "postfix"
        subprocess.run(["postfix", "-c", str(config), "stop"], capture_output=True)
    for pid in info["pids"].values():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 10
    for pid in info["pids"].values():
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
    INFO.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reference_lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("action", choices=("up", "down", "status"))
    action = parser.parse_args().action
    if action == "up":
        info = up()
        print(json.dumps(info, indent=2))
        print("reference-lab: up; `python -m bench.reference_lab down` stops it")
    elif action == "down":
        down()
        print("reference-lab: down")
    else:
        print(INFO.read_text() if INFO.exists() else "{}")


if __name__ == "__main__":
    main()
