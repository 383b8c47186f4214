"""Settings of the POP3 server (`python -m services.pop3`)."""

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from shared.config.base import AuthClientSettings, ServiceSettings
from shared.config.proxy import ProxyProtocolSettings


class Pop3Settings(ServiceSettings, AuthClientSettings, ProxyProtocolSettings):
    """POP3 (RFC 1939 with RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH PLAIN) on the users' Maildirs."""

    pop3_host: str = Field("0.0.0.0", description="Address the POP3 server listens on.")
    pop3_port: int = Field(110, ge=1, le=65535, description="TCP port of the POP3 server.")
    mail_root: Path = Field(
        Path("/var/mail/yubin"),
        description="Root of the mailboxes: a user's Maildir is <mail root>/<domain>/<local part>/. "
        "Must be the same directory local delivery writes to.",
    )
    pop3_tls_cert: Path | None = Field(
        None, description="PEM certificate (chain) for STLS. STLS is offered only if cert and key are set."
    )
    pop3_tls_key: Path | None = Field(None, description="PEM private key for STLS.")
    pop3_allow_plaintext_auth: bool = Field(
        False,
        description="Allow USER/PASS and AUTH PLAIN on connections without TLS (like Dovecot's "
        "disable_plaintext_auth=no). Off by default: passwords travel only inside STLS.",
    )
    pop3_max_connections: int = Field(
        500, ge=1, description="Concurrent connections of one replica; more get -ERR [SYS/TEMP]."
    )
    pop3_max_connections_per_ip: int = Field(
        20, ge=1, description="Concurrent connections from one client address; more get -ERR [SYS/TEMP]."
    )
    pop3_idle_timeout_s: float = Field(
        600.0,
        gt=0,
        description="A client that sends nothing, or reads none of our answers, for this long is "
        "disconnected without UPDATE; RFC 1939 §3 asks for at least 10 minutes (seconds).",
    )
    pop3_max_line: int = Field(
        255, ge=64, description="Longest command line including CRLF (RFC 2449 §4: 255 octets)."
    )
    pop3_max_auth_line: int = Field(
        2048,
        ge=255,
        description="Longest AUTH command or SASL response line. RFC 5034 §4 keeps a client's AUTH line "
        "within 255 octets, but its base64 response lines (address and password) may be longer; clients "
        "that overshoot with an initial response are tolerated up to this.",
    )
    pop3_max_bad_commands: int = Field(
        10, ge=1, description="Unknown, malformed or out-of-state commands before the connection is closed."
    )
    pop3_max_auth_commands: int = Field(
        30, ge=1, description="Commands allowed before a successful login; then the connection is closed."
    )
    pop3_max_auth_failures: int = Field(
        3, ge=1, description="Failed logins on one connection before it is closed."
    )
    pop3_auth_failure_delay_s: float = Field(
        1.0, ge=0, description="Pause before answering a failed login, slowing down guessing (seconds)."
    )
    pop3_lock_ttl_ms: int = Field(
        60_000,
        ge=300,
        description="TTL of the per-maildrop Redis lock, renewed every third of it while the session "
        "lives; after a replica dies its users wait at most this long (milliseconds).",
    )
    pop3_inline_read_max_bytes: int = Field(
        128 * 1024,
        ge=0,
        description="Messages up to this size (on disk) are read whole on the event loop and sent in one "
        "write; larger ones are streamed in 64 KiB chunks read by a worker thread (octets).",
    )
    pop3_tls_handshake_timeout_s: float = Field(
        30.0, gt=0, description="Time a client has to finish the TLS handshake after STLS (seconds)."
    )
    pop3_shutdown_grace_s: float = Field(
        10.0,
        ge=0,
        description="On SIGTERM, how long a command in progress (a long RETR, an UPDATE) may take to "
        "finish before its connection is cut (seconds). Idle sessions are closed at once.",
    )

    @field_validator("pop3_tls_cert", "pop3_tls_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `YUBIN_POP3_TLS_CERT=` in an env file means "no certificate", not the current directory.
        return None if value == "" else value

    @model_validator(mode="after")
    def _tls_pair(self) -> "Pop3Settings":
        if (self.pop3_tls_cert is None) != (self.pop3_tls_key is None):
            raise ValueError("set both YUBIN_POP3_TLS_CERT and YUBIN_POP3_TLS_KEY, or neither")
        return self

    @property
    def tls_configured(self) -> bool:
        return self.pop3_tls_cert is not None and self.pop3_tls_key is not None
