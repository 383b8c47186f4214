"""Admin API: aliases (postmaster@, abuse@, lists, forwards to remote addresses)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.auth.addresses import ADDRESS_MAX, DOMAIN_MAX, normalize_address, normalize_domain
from services.auth.deps import PartsDep, require_admin
from services.auth.directory import NotFound
from shared.models import Alias

router = APIRouter(prefix="/v1/aliases", tags=["aliases"], dependencies=[Depends(require_admin)])

PAGE_MAX = 1000
DESTINATIONS_MAX = 100

Address = Annotated[str, Field(max_length=ADDRESS_MAX + 1), AfterValidator(normalize_address)]


def _distinct(destinations: list[str]) -> list[str]:
    return list(dict.fromkeys(destinations))


class AliasCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: Address = Field(
        description="The alias; its domain must be a local domain, and no user may have the address."
    )
    destinations: Annotated[list[Address], AfterValidator(_distinct)] = Field(
        min_length=1,
        max_length=DESTINATIONS_MAX,
        description="Where its mail goes, in order: local mailboxes, remote addresses, or other aliases "
        "(expanded when mail arrives, at most YUBIN_AUTH_ALIAS_MAX_DEPTH deep; a loop ends where an "
        "address repeats). Stored canonical (lower case), duplicates dropped.",
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add an alias (404 unknown domain, 409 taken)")
async def add_alias(body: AliasCreate, parts: PartsDep) -> Alias:
    return await parts.aliases.add(body.address, body.destinations)


@router.get("", summary="Aliases ordered by address, a page at a time (X-Total-Count: all of them)")
async def list_aliases(
    parts: PartsDep,
    response: Response,
    domain: Annotated[str | None, Query(max_length=DOMAIN_MAX + 1, description="Only this domain.")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Alias]:
    if domain is not None:
        domain = normalize_domain(domain)
        if not await parts.directory.domain_exists(domain):
            raise NotFound(f"domain {domain} does not exist")
    aliases, total = await parts.aliases.page(domain, limit, offset)
    response.headers["X-Total-Count"] = str(total)
    return aliases


@router.get("/{address}", summary="One alias (its destinations as stored, not expanded)")
async def get_alias(address: str, parts: PartsDep) -> Alias:
    canonical = normalize_address(address)
    alias = await parts.aliases.get(canonical)
    if alias is None:
        raise NotFound(f"alias {canonical} does not exist")
    return alias


@router.delete("/{address}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an alias")
async def delete_alias(address: str, parts: PartsDep) -> Response:
    await parts.aliases.delete(normalize_address(address))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
