"""postmaster@, the bare <Postmaster> and an alias with a local and a remote destination, through the whole
lab: both sites' MX, relay, delivery and POP3 as real processes, the alias made with `yubin aliases`."""

import json
import smtplib
from email.message import EmailMessage

from tests.e2e.conftest import Lab
from tests.e2e.mail import hostport, parse, token, wait_for_message, yubin

ALICE = "alice@alpha.test"
BOB = "bob@beta.test"


def message(sender: str, to: str, subject: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, to, subject
    mail.set_content("for whoever reads this address\n")
    return mail


def send_to_mx(lab: Lab, site: str, sender: str, recipient: str, mail: EmailMessage) -> None:
    """As another server would: straight to the site's MX, no login."""
    host, port = hostport(lab.site(site)["mx"])
    with smtplib.SMTP(host, port, local_hostname="mx.example", timeout=30) as smtp:
        smtp.send_message(mail, from_addr=sender, to_addrs=[recipient])


def test_postmaster_of_the_other_site_reaches_its_user(lab: Lab) -> None:
    tag = token()
    yubin(lab, "send", "--lab", "--from", ALICE, "--to", "PostMaster@beta.test", "--subject", tag, "hi")
    [data] = wait_for_message(lab, BOB, tag)  # beta's postmaster@ is bob (lab provisioning)
    assert parse(data)["Delivered-To"] == BOB


def test_bare_postmaster_and_abuse_at_the_mx(lab: Lab) -> None:
    tag = token()
    send_to_mx(lab, "alpha.test", "someone@example.org", "<Postmaster>", message("x@example.org", "p", tag))
    send_to_mx(
        lab, "alpha.test", "someone@example.org", "abuse@alpha.test", message("x@example.org", "a", tag)
    )
    wait_for_message(lab, ALICE, tag, count=2)  # alpha's postmaster@ and abuse@ are alice


def test_alias_with_a_remote_destination(lab: Lab) -> None:
    tag = token()
    alias = f"list-{tag}@alpha.test"
    added = json.loads(yubin(lab, "aliases", "add", alias, ALICE, BOB, "--lab", "--json").stdout)
    assert added["destinations"] == [ALICE, BOB]
    listed = yubin(lab, "aliases", "list", "--lab", "--site", "alpha.test").stdout.decode()
    assert alias in listed and "postmaster@alpha.test" in listed
    try:
        send_to_mx(lab, "alpha.test", "someone@example.org", alias, message("x@example.org", alias, tag))
        [local] = wait_for_message(lab, ALICE, tag)
        [remote] = wait_for_message(lab, BOB, tag)  # alpha's MX → alpha's relay → beta's MX
        assert parse(local)["Delivered-To"] == ALICE
        assert parse(remote)["Delivered-To"] == BOB
        assert parse(remote)["Subject"] == tag
    finally:
        yubin(lab, "aliases", "delete", alias, "--lab")
    gone = yubin(lab, "aliases", "show", alias, "--lab", check=False)
    assert gone.returncode == 5 and b"404" in gone.stderr


def test_bounce_names_the_alias_the_sender_wrote(lab: Lab) -> None:
    tag = token()
    alias = f"gone-{tag}@alpha.test"
    yubin(lab, "aliases", "add", alias, f"nobody-{tag}@alpha.test", "--lab")
    try:
        yubin(lab, "send", "--lab", "--from", ALICE, "--to", alias, "--subject", tag, "to a dead end")
        [dsn] = wait_for_message(lab, ALICE, f"nobody-{tag}@alpha.test")  # delivery's 5.1.1 report
    finally:
        yubin(lab, "aliases", "delete", alias, "--lab")
    assert f"Original-Recipient: rfc822; {alias}".encode() in dsn
    assert f"Final-Recipient: rfc822; nobody-{tag}@alpha.test".encode() in dsn
