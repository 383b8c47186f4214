"""Admin API: the local domains."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.auth.addresses import DOMAIN_MAX, normalize_domain
from services.auth.deps import PartsDep, require_admin
from shared.models import Domain

router = APIRouter(prefix="/v1/domains", tags=["domains"], dependencies=[Depends(require_admin)])

DomainName = Annotated[str, Field(max_length=DOMAIN_MAX + 1), AfterValidator(normalize_domain)]


class DomainCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DomainName = Field(description="Domain name; stored lower-case, IDNA (xn--) for non-ASCII.")


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a domain (409 if it exists)")
async def add_domain(body: DomainCreate, parts: PartsDep) -> Domain:
    return await parts.directory.add_domain(body.name)


@router.get("", summary="All domains, ordered by name")
async def list_domains(parts: PartsDep) -> list[Domain]:
    return await parts.directory.domains()


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a domain (409 while it has users, unless force=true, which deletes them too)",
)
async def delete_domain(
    name: str,
    parts: PartsDep,
    force: Annotated[bool, Query(description="Also delete the domain's users.")] = False,
) -> Response:
    await parts.directory.delete_domain(normalize_domain(name), force=force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
