"""`python -m services.auth`: the auth service under uvicorn, JSON logs on stderr."""

import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator

import uvicorn
from pydantic import ValidationError

from services.auth.app import create_app
from services.auth.malloc import keep_large_blocks_mmapped
from shared.config.auth import AuthSettings
from shared.lifecycle import stop_on_signals
from shared.log import setup_logging

log = logging.getLogger("services.auth")


class _Server(uvicorn.Server):
    """Uvicorn, but shutdown is ours (`shared.lifecycle`): it finishes in-flight requests and exits 0,
    instead of re-raising SIGTERM at the end as uvicorn does on its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# Longer than the keep-alive expiry of shared.auth_client's httpx pool (5 s), so the client closes first.
KEEP_ALIVE_S = 60


async def serve(settings: AuthSettings) -> None:
    stop = stop_on_signals()
    # log_config=None: keep our JSON handler instead of uvicorn's own formatters.
    config = uvicorn.Config(
        create_app(settings),
        host=settings.auth_host,
        port=settings.auth_port,
        log_config=None,
        server_header=False,
        # Idle keep-alive connections outlive the clients' (httpx closes its own after 5 s idle). With
        # uvicorn's default of 5 s both sides closed at the same moment, and a lookup sent on a connection
        # the server was just closing failed (a delivery deferred for a minute over nothing).
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    server = _Server(config)

    async def stop_server() -> None:
        await stop.wait()
        server.should_exit = True

    stopper = asyncio.create_task(stop_server())
    log.info("listening", extra={"host": settings.auth_host, "port": settings.auth_port})
    try:
        await server.serve()
    finally:
        stopper.cancel()
    log.info("stopped")


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = (
            "YUBIN_" + "_".join(str(part) for part in error["loc"]).upper() if error["loc"] else "settings"
        )
        problems.append(f"{field}: {error['msg']}")
    return "; ".join(problems)


def main() -> int:
    setup_logging("auth")
    try:
        settings = AuthSettings()
    except ValidationError as exc:
        # Most often a missing YUBIN_ADMIN_TOKEN or YUBIN_SERVICE_TOKEN: say which, and refuse to start.
        log.critical("refusing to start: invalid settings", extra={"problems": _describe(exc)})
        return 2
    setup_logging("auth", settings.log_level)
    keep_large_blocks_mmapped()
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
