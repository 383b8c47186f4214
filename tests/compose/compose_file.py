"""Reading docker-compose.yml the way the checks and the e2e run need it: services, their Yubin module and
that module's settings class. No Docker needed.
"""

import importlib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CI_OVERRIDE = ROOT / "infra" / "ci" / "docker-compose.ci.yml"
ENV_PREFIX = "YUBIN_"
APP_DIR = "/app"
"""Where the Dockerfile puts the repository's code in the image (WORKDIR)."""

_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` with the given variables (all must be given)."""
    return _INTERPOLATION.sub(lambda m: variables[m.group(1)], value)


def python_module(service: dict[str, Any]) -> str | None:
    """`services.relay` for `command: [python, -m, services.relay]`; None for any other command."""
    command = service.get("command")
    if isinstance(command, list) and command[:2] == ["python", "-m"] and len(command) == 3:
        return command[2]
    return None


def yubin_services(compose: dict[str, Any]) -> dict[str, str]:
    """Compose service name → Yubin service module (`python -m services.<name>`), for every such service."""
    found = {name: python_module(service) for name, service in compose["services"].items()}
    return {name: module for name, module in found.items() if module and module.startswith("services.")}


def settings_class(module: str) -> type[BaseSettings]:
    """The settings class of `services.<name>`: the one BaseSettings subclass in `shared.config.<name>`."""
    config = importlib.import_module("shared.config." + module.removeprefix("services."))
    classes = [
        value
        for value in vars(config).values()
        if isinstance(value, type) and issubclass(value, BaseSettings) and value.__module__ == config.__name__
    ]
    if len(classes) != 1:
        raise LookupError(f"{config.__name__} should define exactly one settings class, found {classes}")
    return classes[0]


def setting_env_names(cls: type[BaseSettings]) -> set[str]:
    return {ENV_PREFIX + name.upper() for name in cls.model_fields}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}
