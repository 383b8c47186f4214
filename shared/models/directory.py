"""Users and domains (the auth service's directory) and the internal auth API's requests and answers."""

from datetime import datetime

from pydantic import BaseModel, Field


class Domain(BaseModel):
    name: str
    created_at: datetime | None = None


class User(BaseModel):
    """A mailbox owner as the admin API shows it. The password hash never leaves the auth service."""

    address: str
    enabled: bool = True
    quota_bytes: int | None = Field(None, ge=0, description="Mailbox size limit; null means unlimited.")
    created_at: datetime | None = None


class Alias(BaseModel):
    """A local address that stands for other addresses (local or remote), as the admin API shows it."""

    address: str = Field(description="The alias address (canonical: lower case, IDNA domain).")
    destinations: list[str] = Field(description="Where its mail goes: mailboxes, remote addresses, aliases.")
    created_at: datetime | None = None


class VerifyRequest(BaseModel):
    username: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    service: str = Field(max_length=32, description="submission, pop3 ...")
    client_ip: str | None = Field(None, max_length=64)


class VerifyResult(BaseModel):
    """The answer to a login. `ok` false with `throttled` true means: too many failures, come back later."""

    ok: bool
    address: str | None = Field(None, description="The canonical address when ok.")
    throttled: bool = False
    retry_after_s: int | None = None


class RecipientInfo(BaseModel):
    """A local address as the mail services see it: a mailbox (`exists`), an alias (`destinations`), or
    neither. An address is never both."""

    address: str
    exists: bool = Field(description="A mailbox of this address exists.")
    enabled: bool = False
    quota_bytes: int | None = None
    destinations: list[str] | None = Field(
        None,
        description="Set when the address is an alias: the final recipients of its expansion (mailboxes, "
        "remote addresses; nested aliases already expanded, loops cut). Empty: it expands to nothing "
        "(a loop, or deeper or wider than the limits).",
    )

    @property
    def deliverable(self) -> bool:
        return self.exists and self.enabled


class DomainList(BaseModel):
    domains: list[str]
