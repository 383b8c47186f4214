"""The console's settings: where it listens, how people log in, and the sites it watches."""

import json
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SiteEndpoint(BaseModel):
    """One mail site as the console reaches it: the `sites` entry of `yubin lab info --json`."""

    domain: str
    admin: str = Field(description="Base URL of the site's admin API.")
    admin_token: SecretStr
    submission: str = Field("", description="HOST:PORT of the site's submission service (the send form).")
    users: dict[str, SecretStr] = Field(default_factory=dict, description="Lab users: address → password.")


class ConsoleSettings(BaseSettings):
    """Environment variables are the field names upper-cased, prefixed `YUBIN_CONSOLE_`."""

    model_config = SettingsConfigDict(env_prefix="YUBIN_CONSOLE_", extra="ignore", frozen=True)

    host: str = Field(
        "127.0.0.1", description="Address to listen on (loopback: the console is an admin tool)."
    )
    port: int = Field(8025, ge=0, le=65535, description="Port to listen on.")
    password: SecretStr | None = Field(
        None,
        description="The console password (besides any site's admin token); generated and printed if unset.",
    )
    sites: dict[str, Any] = Field(
        default_factory=dict,
        description='The sites as JSON, the shape of `yubin lab info --json`\'s "sites": '
        '{"alpha.test": {"admin": URL, "admin_token": ..., "submission": HOST:PORT, "users": {ADDRESS: PASSWORD}}}.',
    )
    metrics: dict[str, list[str]] = Field(
        default_factory=dict,
        description="The services' /metrics for the map's rates and queue depths, as JSON: "
        '{"alpha.test/relay": [URL, ...]}; a URL alone is one too, so `yubin lab info --json`\'s "metrics" '
        "fits as it is. The site is the key's part before `/`; a host name is resolved at every scrape "
        "to all its addresses (compose replicas). Empty: the map shows no rates.",
    )
    metrics_interval_s: float = Field(
        3.0, ge=0.5, le=60, description="How often the console scrapes every /metrics (seconds)."
    )
    session_ttl_s: int = Field(8 * 3600, ge=60, description="How long a login lasts (seconds).")
    upstream_timeout_s: float = Field(5.0, gt=0, description="Timeout of one admin API request (seconds).")
    log_level: str = Field("INFO", description="Python log level for the JSON logs on stderr.")

    @field_validator("sites", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("metrics", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        value = json.loads(value) if isinstance(value, str) else value
        if isinstance(value, dict):
            return {key: [urls] if isinstance(urls, str) else urls for key, urls in value.items()}
        return value

    def endpoints(self) -> list[SiteEndpoint]:
        return [SiteEndpoint(domain=domain, **entry) for domain, entry in self.sites.items()]
