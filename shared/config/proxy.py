"""Settings of the listeners that sit behind a front (HAProxy): the SMTP listeners and POP3 read the client's
address from a PROXY protocol v2 header sent by a trusted front (`shared.proxy_protocol`)."""

from functools import cached_property

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.proxy_protocol import TrustedFronts


class ProxyProtocolSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUBIN_", extra="ignore", frozen=True)

    proxy_protocol_from: str = Field(
        "",
        description="Addresses or networks (comma-separated, e.g. `172.28.0.0/16, 10.0.0.5`) of the fronts "
        "(HAProxy with `send-proxy-v2`) allowed to pass on a client's address with the PROXY protocol v2. "
        "A connection from one of them must begin with a PROXY v2 header, and the client address in it is "
        "used for every per-address limit, login throttling, the Received header and the logs; without a "
        "valid header it is closed. Anyone else who sends a PROXY header is closed; clients without one "
        "are served as usual. Empty: off (no header is accepted from anyone).",
    )
    proxy_protocol_timeout_s: float = Field(
        5.0,
        gt=0,
        description="How long a trusted front has to send its whole PROXY header; then the connection is "
        "closed (Postfix: smtpd_upstream_proxy_timeout; seconds).",
    )

    @field_validator("proxy_protocol_from")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        TrustedFronts.parse(value)  # ValueError names the entry that is not an address or network
        return value

    @cached_property  # parsed once, not per connection
    def proxy_fronts(self) -> TrustedFronts:
        return TrustedFronts.parse(self.proxy_protocol_from)
