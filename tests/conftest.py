"""Test configuration: every fixture starts a real server (see tests/fixtures/)."""

pytest_plugins = [
    "tests.fixtures.redis_server",
    "tests.fixtures.redis_ha",
    "tests.fixtures.nsd",
    "tests.fixtures.processes",
    "tests.fixtures.auth",
    "tests.fixtures.haproxy",
]
