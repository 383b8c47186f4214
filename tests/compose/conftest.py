"""The running compose lab, for the tests marked `compose` (`make test-compose` starts it and points
`YUBIN_E2E_LAB_INFO` at its lab info); the static checks of the compose files need none of this."""

import json
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import LAB_INFO_ENV, Lab


@pytest.fixture(scope="module")
def lab() -> Lab:
    path = os.environ.get(LAB_INFO_ENV)
    if not path:
        pytest.fail(f"{LAB_INFO_ENV} is not set: run `make test-compose`, which starts the compose lab")
    return Lab(json.loads(Path(path).read_text()), Path(path), None)
