"""Admin API: the local domains."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.auth.addresses import ADDRESS_MAX, DOMAIN_MAX, normalize_address, normalize_domain
from services.auth.deps import PartsDep, require_admin
from shared.models import Domain

router = APIRouter(prefix="/v1/domains", tags=["domains"], dependencies=[Depends(require_admin)])

DomainName = Annotated[str, Field(max_length=DOMAIN_MAX + 1), AfterValidator(normalize_domain)]


class DomainCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DomainName = Field(description="Domain name; stored lower-case, IDNA (xn--) for non-ASCII.")
    postmaster: (
        Annotated[str, Field(max_length=ADDRESS_MAX + 1), AfterValidator(normalize_address)] | None
    ) = Field(
        None,
        description="Who reads the domain's postmaster@ (RFC 5321 §4.5.1) and abuse@ (RFC 2142) mail: "
        "both are created as aliases of this address (a user of this or another domain, or a remote "
        "address). Leave it out only if you create those aliases yourself: every mail domain must "
        "accept postmaster@.",
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a domain, with its postmaster@ and abuse@ aliases (409 if it exists)",
)
async def add_domain(body: DomainCreate, parts: PartsDep) -> Domain:
    return await parts.directory.add_domain(body.name, body.postmaster)


@router.get("", summary="All domains, ordered by name")
async def list_domains(parts: PartsDep) -> list[Domain]:
    return await parts.directory.domains()


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a domain and its aliases (409 while it has users, unless force=true, which deletes "
    "them too)",
)
async def delete_domain(
    name: str,
    parts: PartsDep,
    force: Annotated[bool, Query(description="Also delete the domain's users.")] = False,
) -> Response:
    await parts.directory.delete_domain(normalize_domain(name), force=force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
