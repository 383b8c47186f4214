"""Settings, one class per service, all read from `YUBIN_*` environment variables (pydantic-settings).

Every field carries a description; the settings table in docs/settings.md is generated from these classes.
"""

from shared.config.base import AuthClientSettings, BusSettings, ServiceSettings

__all__ = ["AuthClientSettings", "BusSettings", "ServiceSettings"]
