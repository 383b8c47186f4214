"""The FastAPI application: parts wired once, routes, and errors turned into clear JSON answers."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from services.auth.addresses import InvalidAddress
from services.auth.aliases import Aliases
from services.auth.body_limit import BodyLimit
from services.auth.deps import Parts
from services.auth.directory import AlreadyExists, Directory, DirectoryError, DomainHasUsers, NotFound
from services.auth.login import Logins
from services.auth.login_cache import LoginCache
from services.auth.passwords import Passwords
from services.auth.routes import aliases, domains, health, internal, queue, users
from services.auth.throttle import LoginsBusy, Throttle
from shared.config.auth import AuthSettings
from shared.redis_client import connect_site

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024

_STATUS = {
    NotFound: status.HTTP_404_NOT_FOUND,
    AlreadyExists: status.HTTP_409_CONFLICT,
    DomainHasUsers: status.HTTP_409_CONFLICT,
}


def create_app(settings: AuthSettings) -> FastAPI:
    redis = connect_site(settings)
    directory = Directory(redis)
    passwords = Passwords(settings)
    parts = Parts(
        settings=settings,
        redis=redis,
        directory=directory,
        aliases=Aliases(
            redis,
            max_depth=settings.auth_alias_max_depth,
            max_recipients=settings.auth_alias_max_recipients,
        ),
        passwords=passwords,
        logins=Logins(
            directory, passwords, Throttle(redis, settings), LoginCache(settings.auth_login_cache_ttl_s)
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await redis.aclose()

    app = FastAPI(
        title="Yubin user-auth",
        summary="Users, aliases and domains; admin API (/v1, admin token) and internal API (/internal/v1, service token).",
        version="1",
        lifespan=lifespan,
    )
    # The largest legitimate body is a login or a new user: well under this.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.state.parts = parts
    for module in (domains, users, aliases, internal, health, queue):
        app.include_router(module.router)

    @app.exception_handler(DirectoryError)
    async def directory_error(request: Request, exc: DirectoryError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=_STATUS.get(type(exc), status.HTTP_409_CONFLICT)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default answer echoes each bad input back: a refused password included. Loc and
        # msg say what is wrong without it.
        errors = [{k: v for k, v in e.items() if k not in ("input", "ctx", "url")} for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(InvalidAddress)
    async def invalid_address(request: Request, exc: InvalidAddress) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_400_BAD_REQUEST)

    @app.exception_handler(LoginsBusy)
    async def logins_busy(request: Request, exc: LoginsBusy) -> JSONResponse:
        # A temporary failure for the mail services (POP3 [SYS/TEMP], SMTP 454), not a failed login.
        log.warning("login refused: too many logins in progress on one of its throttle counters")
        return JSONResponse(
            {"detail": "too many logins in progress, try again"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(RedisError)
    async def redis_error(request: Request, exc: RedisError) -> JSONResponse:
        # The mail services turn this into a temporary failure (SMTP 4xx, POP3 [SYS/TEMP]).
        log.error("redis unavailable", extra={"error": str(exc), "path": request.url.path})
        return JSONResponse({"detail": "user directory unavailable, try again"}, status_code=503)

    return app
