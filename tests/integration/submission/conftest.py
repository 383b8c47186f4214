"""A small real site per test module: redis-server, the auth service, and reception processes.

Starting processes is the slow part, so a module shares one `site` (and the mx/submission processes its
tests start); `clean_queues` empties the streams and bodies before each test so every test sees only
what it sent. Tests that stop Redis or send SIGTERM use the function-scoped fixtures instead.
"""

import secrets
from collections.abc import Iterator

import pytest
import redis

from tests.fixtures.auth import start_auth_service
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.redis_server import RedisServer
from tests.integration.submission.site import DOMAIN, FAST_AUTH, Site, make_certificate


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("site")
    server = RedisServer(directory / "redis").start()
    started: list[ServiceProcess] = []

    def factory(
        module: str, env: dict[str, str], *, wait_port=None, name: str | None = None
    ) -> ServiceProcess:
        log_path = directory / "logs" / f"{name or module}-{len(started)}-{secrets.token_hex(2)}.log"
        process = ServiceProcess(module, env, log_path)
        started.append(process)
        return process.start(wait_port)

    try:
        # A first login delay no test outlasts: the throttling test sees it, however slow the machine.
        auth = start_auth_service(factory, server.url, **FAST_AUTH, YUBIN_AUTH_DELAY_BASE_S="600")
        auth.add_domain(DOMAIN)
        yield Site(redis=server, auth=auth, certificate=make_certificate(directory), factory=factory)
        auth.admin.close()
    finally:
        for process in reversed(started):
            process.stop()
        server.stop()


@pytest.fixture
def clean_queues(site: Site) -> Iterator[redis.Redis]:
    """The site's Redis with no streams or bodies left over from earlier tests."""
    client = site.client()
    for pattern in ("yubin:stream:*", "yubin:body:*"):
        keys = list(client.scan_iter(match=pattern))
        if keys:
            client.delete(*keys)
    yield client
    client.close()
