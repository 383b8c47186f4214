"""What route handlers depend on: the service's parts (built once per app) and the two token checks."""

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from redis.asyncio import Redis

from services.auth.aliases import Aliases
from services.auth.directory import Directory
from services.auth.login import Logins
from services.auth.passwords import Passwords
from shared.config.auth import AuthSettings


@dataclass
class Parts:
    settings: AuthSettings
    redis: Redis
    directory: Directory
    aliases: Aliases
    passwords: Passwords
    logins: Logins


def get_parts(request: Request) -> Parts:
    return request.app.state.parts


PartsDep = Annotated[Parts, Depends(get_parts)]

_admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="YUBIN_ADMIN_TOKEN (admin API, /v1)"
)
_service_bearer = HTTPBearer(
    auto_error=False, scheme_name="ServiceToken", description="YUBIN_SERVICE_TOKEN (internal API)"
)


def _check_token(credentials: HTTPAuthorizationCredentials | None, expected: SecretStr) -> None:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    # Constant time: how much of a guess was right must not show in the answer time.
    if not hmac.compare_digest(credentials.credentials.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


def require_admin(
    parts: PartsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)]
) -> None:
    _check_token(credentials, parts.settings.admin_token)


def require_service(
    parts: PartsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_service_bearer)]
) -> None:
    _check_token(credentials, parts.settings.service_token)
