"""Admin API: users (mailboxes). Passwords go in, hashes never come out."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.auth.addresses import ADDRESS_MAX, DOMAIN_MAX, normalize_address, normalize_domain
from services.auth.deps import PartsDep, require_admin
from services.auth.directory import NotFound
from shared.models import User

router = APIRouter(prefix="/v1/users", tags=["users"], dependencies=[Depends(require_admin)])

PASSWORD_MAX = 1024  # the internal API's VerifyRequest takes no longer password
QUOTA_MAX = 2**62
PAGE_MAX = 1000

Address = Annotated[str, Field(max_length=ADDRESS_MAX + 1), AfterValidator(normalize_address)]
Password = Annotated[str, Field(max_length=PASSWORD_MAX)]
Quota = Annotated[int, Field(ge=0, le=QUOTA_MAX)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: Address = Field(description="Mailbox address; its domain must exist. Stored lower-case.")
    password: Password = Field(description="At least YUBIN_AUTH_PASSWORD_MIN_LENGTH characters.")
    quota_bytes: Quota | None = Field(None, description="Mailbox size limit; null: unlimited.")


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Password | None = None
    enabled: bool | None = None
    quota_bytes: Quota | None = Field(None, description="Given as null: remove the limit.")


def _check_password(password: str, parts: PartsDep) -> None:
    minimum = parts.settings.auth_password_min_length
    if len(password) < minimum:
        # The same shape as any other body validation error.
        raise RequestValidationError(
            [
                {
                    "type": "string_too_short",
                    "loc": ("body", "password"),
                    "msg": f"password must be at least {minimum} characters",
                }
            ]
        )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a user (404 unknown domain, 409 exists)")
async def add_user(body: UserCreate, parts: PartsDep) -> User:
    _check_password(body.password, parts)
    password_hash = await parts.passwords.hash(body.password)
    user = await parts.directory.add_user(body.address, password_hash, body.quota_bytes)
    return user.public()


@router.get("", summary="Users ordered by address, a page at a time (X-Total-Count: all of them)")
async def list_users(
    parts: PartsDep,
    response: Response,
    domain: Annotated[str | None, Query(max_length=DOMAIN_MAX + 1, description="Only this domain.")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[User]:
    if domain is not None:
        domain = normalize_domain(domain)
        if not await parts.directory.domain_exists(domain):
            raise NotFound(f"domain {domain} does not exist")
    users, total = await parts.directory.list_users(domain, limit, offset)
    response.headers["X-Total-Count"] = str(total)
    return [user.public() for user in users]


@router.get("/{address}", summary="One user")
async def get_user(address: str, parts: PartsDep) -> User:
    canonical = normalize_address(address)
    user = await parts.directory.get_user(canonical)
    if user is None:
        raise NotFound(f"user {canonical} does not exist")
    return user.public()


@router.patch("/{address}", summary="Change password, enabled or quota (fields left out stay)")
async def patch_user(address: str, body: UserPatch, parts: PartsDep) -> User:
    canonical = normalize_address(address)
    password_hash = None
    if body.password is not None:
        _check_password(body.password, parts)
        password_hash = await parts.passwords.hash(body.password)
    user = await parts.directory.update_user(
        canonical,
        password_hash=password_hash,
        enabled=body.enabled,
        quota_bytes=body.quota_bytes,
        set_quota="quota_bytes" in body.model_fields_set,
    )
    return user.public()


@router.delete("/{address}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a user")
async def delete_user(address: str, parts: PartsDep) -> Response:
    await parts.directory.delete_user(normalize_address(address))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
