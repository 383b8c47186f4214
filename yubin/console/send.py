"""The send form: a message from one of the lab's users, over the site's submission service with AUTH."""

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from yubin.console.settings import SiteEndpoint

MAX_SUBJECT = 200
MAX_BODY = 20_000
MAX_RECIPIENTS = 10


class SendRefused(ValueError):
    pass


def compose(sender: str, recipients: list[str], subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message.set_content(body)
    return message


def check(
    sender: str, recipients: list[str], subject: str, body: str, sites: list[SiteEndpoint]
) -> SiteEndpoint:
    """The sender's site, if the message may be sent; SendRefused says why not."""
    site = next((s for s in sites if sender in s.users), None)
    if site is None:
        raise SendRefused("the sender must be one of the lab's users")
    if not site.submission:
        raise SendRefused(f"no submission address for {site.domain}")
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        raise SendRefused(f"between 1 and {MAX_RECIPIENTS} recipients")
    for rcpt in recipients:
        local, at, domain = rcpt.rpartition("@")
        if not at or not local or not domain or any(c in rcpt for c in " \r\n<>,"):
            raise SendRefused("a recipient is not an address")
    if len(subject) > MAX_SUBJECT or any(c in subject for c in "\r\n"):
        raise SendRefused(f"the subject is one line of at most {MAX_SUBJECT} characters")
    if len(body) > MAX_BODY:
        raise SendRefused(f"the text is at most {MAX_BODY} characters")
    return site


async def submit(site: SiteEndpoint, sender: str, message: EmailMessage, timeout_s: float) -> str:
    """Submit; the server's reply to the message (it holds the queue id)."""
    host, _, port = site.submission.rpartition(":")
    # The lab's submission allows AUTH without TLS on its private network (YUBIN_ALLOW_PLAINTEXT_AUTH).
    async with aiosmtplib.SMTP(hostname=host, port=int(port), timeout=timeout_s, start_tls=False) as smtp:
        await smtp.login(sender, site.users[sender].get_secret_value())
        _refused, reply = await smtp.send_message(message)
    return reply
