"""Settings of the user-auth service (`python -m services.auth`)."""

import os

from pydantic import Field, SecretStr, model_validator

from shared.config.base import ServiceSettings

# Tokens are bearer secrets: long enough that guessing is hopeless (e.g. `openssl rand -hex 32`).
TOKEN_MIN_LENGTH = 16


class AuthSettings(ServiceSettings):
    """The auth service: REST admin API, internal API for the mail services, login throttling."""

    admin_token: SecretStr = Field(
        description="Bearer token of the admin API (/v1). Required: the service refuses to start without "
        f"one. At least {TOKEN_MIN_LENGTH} characters and different from YUBIN_SERVICE_TOKEN."
    )
    service_token: SecretStr = Field(
        description="Bearer token of the internal API (/internal/v1) that submission, MX, delivery and "
        f"POP3 use. Required; at least {TOKEN_MIN_LENGTH} characters."
    )
    auth_host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    auth_port: int = Field(8080, ge=1, le=65535, description="Port the HTTP server listens on.")

    # Login throttling (services/auth/throttle.py; docs/auth.md "Login throttling").
    auth_pair_free_failures: int = Field(
        3,
        ge=1,
        description="Failed logins of one username from one client network (IPv4 address, IPv6 /64) "
        "before delays start: from this many on, each further attempt from there must wait "
        "YUBIN_AUTH_DELAY_BASE_S, doubling with every failure. Counted the same whether or not the user "
        "exists; a success from there clears it.",
    )
    auth_ip_free_failures: int = Field(
        10,
        ge=1,
        description="Failed logins from one client network, any usernames, before that network is "
        "delayed the same way. A success does not clear it. Networks that logged in as the username "
        "recently (YUBIN_AUTH_KNOWN_NETWORK_S) are not held by it.",
    )
    auth_user_free_failures: int = Field(
        10,
        ge=1,
        description="Failed logins of one username from networks it has not logged in from recently, "
        "before all such networks are delayed for it (a guesser spread over many addresses). Networks "
        "that logged in as the username within YUBIN_AUTH_KNOWN_NETWORK_S are exempt, so this never "
        "locks the user out of where they usually log in.",
    )
    auth_delay_base_s: float = Field(
        1.0,
        gt=0,
        description="The first delay once a counter's free failures are used up; it doubles with each "
        "further failure, including attempts refused during a delay (seconds).",
    )
    auth_delay_max_s: float = Field(
        900.0, gt=0, description="The longest delay: the doubling stops here (seconds)."
    )
    auth_failure_window_s: int = Field(
        900,
        ge=1,
        description="A counter's failures are forgotten this long after the last delay they caused has "
        "run out (seconds).",
    )
    auth_known_network_s: int = Field(
        30 * 24 * 3600,
        ge=1,
        description="How long a successful login makes its client network known for the username: "
        "exempt from the username's and the network's own counters, held only by its own (username, "
        "network) counter (seconds; default 30 days).",
    )
    auth_ip_burst: int = Field(
        20,
        ge=0,
        description="Logins from one client network that may be checked at once beyond its failures "
        "left: many users behind one NAT log in at the same time. A burst of guesses overshoots "
        "YUBIN_AUTH_IP_FREE_FAILURES by at most this many. (For the other counters the bound is exact.)",
    )
    auth_login_wait_s: float = Field(
        2.0,
        ge=0,
        description="How long a login waits while one of its counters already has as many logins being "
        "checked as it has failures left; then it is answered 503 (a temporary failure). Keep it well "
        "under the clients' YUBIN_AUTH_TIMEOUT_S (seconds).",
    )
    auth_login_cache_ttl_s: float = Field(
        300.0,
        ge=0,
        description="How long a successful login is remembered, so the same username and password "
        "against the same stored hash skip the password hash (argon2) at the next login; 0 turns it off. "
        "A password change or a deleted or disabled user takes effect at once, on every replica. The "
        "trade: meanwhile the process's memory holds a fast-to-check HMAC of the password "
        "(docs/auth.md, Login cache) (seconds).",
    )

    auth_password_min_length: int = Field(
        8, ge=1, le=1024, description="Shortest password the admin API accepts for a user."
    )
    auth_hash_concurrency: int = Field(
        default_factory=lambda: os.cpu_count() or 2,
        ge=1,
        description="Password hashes computed at once; more wait. Argon2 costs its memory "
        "(YUBIN_AUTH_ARGON2_MEMORY_KIB) and a CPU core each, so this bounds what a flood of logins can take. "
        "Default: the number of CPUs.",
    )
    # Defaults: the OWASP Password Storage Cheat Sheet's argon2id configuration (19 MiB, t=2, p=1;
    # https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html). Changing a cost
    # re-hashes each user's password at their next successful login.
    auth_argon2_time_cost: int = Field(2, ge=1, description="Argon2id iterations (OWASP: 2).")
    auth_argon2_memory_kib: int = Field(
        19456, ge=8, description="Argon2id memory per hash (KiB; OWASP: 19 MiB = 19456)."
    )
    auth_argon2_parallelism: int = Field(
        1,
        ge=1,
        description="Argon2id lanes (OWASP: 1). Lanes run as threads: more than 1 only makes one hash "
        "faster by taking cores from the other logins.",
    )

    auth_alias_max_depth: int = Field(
        10,
        ge=1,
        le=100,
        description="How deep aliases may nest (an alias naming an alias ...); deeper makes the alias "
        "expand to nothing, so its mail is refused (Postfix: virtual_alias_recursion_limit).",
    )
    auth_alias_max_recipients: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Most final recipients one alias may expand to; more makes it expand to nothing, so "
        "its mail is refused (Postfix: virtual_alias_expansion_limit).",
    )

    @model_validator(mode="after")
    def _delays_are_ordered(self) -> "AuthSettings":
        if self.auth_delay_max_s < self.auth_delay_base_s:
            raise ValueError("YUBIN_AUTH_DELAY_MAX_S must be at least YUBIN_AUTH_DELAY_BASE_S")
        return self

    @model_validator(mode="after")
    def _tokens_are_strong_and_distinct(self) -> "AuthSettings":
        admin = self.admin_token.get_secret_value()
        service = self.service_token.get_secret_value()
        for name, token in (("YUBIN_ADMIN_TOKEN", admin), ("YUBIN_SERVICE_TOKEN", service)):
            if len(token) < TOKEN_MIN_LENGTH:
                raise ValueError(f"{name} must be at least {TOKEN_MIN_LENGTH} characters")
        if admin == service:
            # Otherwise every mail service could administer users.
            raise ValueError("YUBIN_ADMIN_TOKEN and YUBIN_SERVICE_TOKEN must differ")
        return self
