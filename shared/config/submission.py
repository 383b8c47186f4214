"""Settings of the SMTP reception service (`python -m services.submission`), one package in two roles."""

from enum import StrEnum
from pathlib import Path

from pydantic import Field, model_validator

from shared.config.base import AuthClientSettings, ServiceSettings
from shared.config.proxy import ProxyProtocolSettings


class SmtpRole(StrEnum):
    SUBMISSION = "submission"
    """Port 587 (RFC 6409): authenticated users send mail anywhere."""
    MX = "mx"
    """Port 25 (RFC 5321): the world delivers mail for our own domains."""


DEFAULT_PORTS = {SmtpRole.SUBMISSION: 587, SmtpRole.MX: 25}


class SubmissionSettings(ServiceSettings, AuthClientSettings, ProxyProtocolSettings):
    smtp_role: SmtpRole = Field(
        SmtpRole.SUBMISSION, description="Which role this process serves: `submission` (587) or `mx` (25)."
    )
    smtp_host: str = Field("127.0.0.1", description="Address to listen on.")
    smtp_port: int | None = Field(
        None, ge=1, le=65535, description="Port to listen on; empty means 587 for submission, 25 for mx."
    )
    max_message_size: int = Field(
        25 * 1024 * 1024,
        ge=1024,
        description="Largest message accepted, in octets (advertised as SIZE, RFC 1870); larger gets 552.",
    )
    max_recipients: int = Field(
        100, ge=1, description="Recipients per message; more get 452 4.5.3 (RFC 5321 §4.5.3.1.10)."
    )
    max_line_length: int = Field(
        1000,
        ge=100,
        description="Longest command or message line in octets including CRLF (RFC 5321 §4.5.3.1.6); "
        "a longer DATA line gets the whole message refused with 500 5.5.2.",
    )
    max_connections: int = Field(
        100, ge=1, description="Concurrent SMTP sessions; one more is greeted with 421 4.7.0 and closed."
    )
    max_connections_per_ip: int = Field(
        50,
        ge=0,
        description="Concurrent SMTP sessions from one client address; one more is greeted with "
        "`421 4.7.0 Error: too many connections from <address>` and closed (Postfix: "
        "smtpd_client_connection_count_limit, same default). Keep it well below `max_connections`, so one "
        "address cannot take every slot. 0: no limit.",
    )
    max_connection_rate_per_ip: int = Field(
        100,
        ge=0,
        description="Connections one client address may open per `connection_rate_window_s` (refused "
        "ones count too); more are greeted with 421 4.7.0 and closed (Postfix: "
        "smtpd_client_connection_rate_limit). A mail server reuses its connections, so 100 a minute is "
        "far above what an honest client needs, and it stops one address from reconnecting to get around "
        "the per-session limits. 0: no limit.",
    )
    connection_rate_window_s: float = Field(
        60.0,
        gt=0,
        description="The time unit of `max_connection_rate_per_ip` (Postfix: anvil_rate_time_unit).",
    )
    stress_threshold_percent: int = Field(
        80,
        ge=1,
        le=100,
        description="Stress mode: while this share of `max_connections` is in use, the idle timeout is "
        "`stress_idle_timeout_s` for every session, so a flood of idle connections is shed quickly "
        "(Postfix's stress mode, which starts when all smtpd processes are busy).",
    )
    stress_idle_timeout_s: float = Field(
        10.0,
        gt=0,
        description="The idle timeout under stress (Postfix: smtpd_timeout = ${stress?{10}:{300}}s); "
        "never longer than `idle_timeout_s`.",
    )
    max_data_memory: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        description="Octets of message data all sessions together may hold in memory at once (the "
        "messages being received and stored). DATA that would go over it gets `452 4.3.1 Error: "
        "insufficient system storage`; the client retries later. At least `max_message_size`.",
    )
    idle_timeout_s: float = Field(
        300.0, gt=0, description="A session that sends nothing for this long is closed with 421 4.4.2."
    )
    session_timeout_s: float = Field(
        1800.0, gt=0, description="Longest total duration of one session; then 421 4.4.2 and close."
    )
    max_errors: int = Field(
        20,
        ge=1,
        description="Error replies (4xx/5xx) in one session before 421 4.7.0 and disconnect "
        "(Postfix: smtpd_hard_error_limit).",
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate (chain) for STARTTLS; STARTTLS is offered only when set."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key matching `tls_cert_file`.")
    allow_plaintext_auth: bool = Field(
        False,
        description="Offer and accept AUTH without STARTTLS (submission role). For labs only: "
        "passwords then cross the network in clear.",
    )
    local_domains_refresh_s: float = Field(
        30.0, gt=0, description="How long the list of local domains from the auth service is cached."
    )
    postmaster_domain: str | None = Field(
        None,
        description="Whose postmaster the bare `RCPT TO:<Postmaster>` (RFC 5321 §4.5.1) is: "
        "postmaster@ this domain, which must be a local domain. Empty: YUBIN_HOSTNAME without its first "
        "label (mx.alpha.test → alpha.test), like Postfix's $mydomain.",
    )
    shutdown_grace_s: float = Field(
        10.0,
        ge=0,
        description="On SIGTERM: how long sessions in the middle of a transaction may take to finish "
        "before they are closed.",
    )

    trace_subjects: bool = Field(
        True,
        description="Put each accepted message's Subject (decoded, one line, at most 200 characters) in its "
        "`accepted` trace event, for the console and `yubin trace`. That is message content kept in Redis's "
        "trace stream (until trimmed, TRACE_MAXLEN events); off: the event has no subject.",
    )

    @model_validator(mode="after")
    def _memory_holds_one_message(self) -> "SubmissionSettings":
        if self.max_data_memory < self.max_message_size:
            raise ValueError("YUBIN_MAX_DATA_MEMORY must be at least YUBIN_MAX_MESSAGE_SIZE")
        return self

    @property
    def own_domain(self) -> str:
        """The domain of the bare `<Postmaster>` (see `postmaster_domain`)."""
        if self.postmaster_domain:
            return self.postmaster_domain.lower().rstrip(".")
        labels = self.hostname.lower().rstrip(".").split(".")
        return ".".join(labels[1:]) if len(labels) > 2 else ".".join(labels)

    @property
    def listen_port(self) -> int:
        return self.smtp_port if self.smtp_port is not None else DEFAULT_PORTS[self.smtp_role]
