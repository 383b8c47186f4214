"""Print a compose override that gives the lab the end-to-end suite's short timers and cheap hashes.

    python -m tests.compose.e2e_override > e2e.override.yml   (JSON is YAML)

The settings are the ones the native e2e lab gets (`tests/e2e/conftest.py`, E2E_SETTINGS); each service
gets those its settings class has, as the native lab does (yubin/lab/processes.py, apply_overrides). Used
by `make test-compose` only: a plain `docker compose up` keeps the defaults.
"""

import json
import sys

from tests.compose.compose_file import load, setting_env_names, settings_class, yubin_services
from tests.e2e.conftest import E2E_SETTINGS


def override() -> dict:
    services = {}
    for name, module in sorted(yubin_services(load()).items()):
        names = setting_env_names(settings_class(module))
        env = {key: value for key, value in E2E_SETTINGS.items() if key in names}
        if env:
            services[name] = {"environment": env}
    return {"services": services}


if __name__ == "__main__":
    json.dump(override(), sys.stdout, indent=2)
    sys.stdout.write("\n")
