"""Print a compose override that gives the lab the end-to-end suite's short timers and cheap hashes (and
healthchecks that tolerate a loaded machine).

    python -m tests.compose.e2e_override > e2e.override.yml   (JSON is YAML)

The settings are the ones the native e2e lab gets (`tests/e2e/conftest.py`, E2E_SETTINGS); each service
gets those its settings class has, as the native lab does (yubin/lab/processes.py, apply_overrides). Used
by `make test-compose` only: a plain `docker compose up` keeps the defaults.
"""

import json
import sys

from tests.compose.compose_file import load, setting_env_names, settings_class, yubin_services
from tests.e2e.conftest import E2E_SETTINGS

KILL_AFTER = ["timeout", "-s", "KILL"]
SLOW_MACHINE_CHECK_S = 30
"""A test run's healthcheck timeout. The lab's 5 s fails every check on a machine that other work loads
(seen: load average 100 on 2 cores, a `docker exec` alone taking longer); slow checks still end, killed."""
CONSOLE_UPSTREAM_TIMEOUT_S = 20
"""The console's wait for a site's admin API or submission in a test run (5 s by default): the browser test
sends from its form while the rest of the loaded lab works (seen: no answer within 5 s, load 50 on 2 cores)."""
CHECK_EVERY_S = 10
"""A test run's healthcheck interval. A relay or delivery check costs about 0.5 s of CPU (importing
redis-py); every 3 s that is a sixth of a core per consumer container, over a core for the scaled lab."""


def slow_machine_healthcheck(test: list[str]) -> dict | None:
    """The same check with a longer timeout, for a service whose check runs under `timeout -s KILL N`."""
    if test[1:4] != KILL_AFTER:
        return None
    return {
        "test": [test[0], *KILL_AFTER, str(SLOW_MACHINE_CHECK_S), *test[5:]],
        "timeout": f"{SLOW_MACHINE_CHECK_S}s",
        "interval": f"{CHECK_EVERY_S}s",
    }


def override() -> dict:
    compose = load()
    services: dict[str, dict] = {}
    for name, module in sorted(yubin_services(compose).items()):
        names = setting_env_names(settings_class(module))
        env = {key: value for key, value in E2E_SETTINGS.items() if key in names}
        if env:
            services[name] = {"environment": env}
    services["console"] = {
        "environment": {"YUBIN_CONSOLE_UPSTREAM_TIMEOUT_S": str(CONSOLE_UPSTREAM_TIMEOUT_S)}
    }
    for name, service in sorted(compose["services"].items()):
        check = slow_machine_healthcheck(service.get("healthcheck", {}).get("test", []))
        if check is not None:
            services.setdefault(name, {})["healthcheck"] = check
    return {"services": services}


if __name__ == "__main__":
    json.dump(override(), sys.stdout, indent=2)
    sys.stdout.write("\n")
