"""The internal API the mail services call with the service token (contract: `shared.auth_client`)."""

from fastapi import APIRouter, Depends

from services.auth.addresses import InvalidAddress, normalize_address
from services.auth.deps import PartsDep, require_service
from shared.models import DomainList, RecipientInfo, VerifyRequest, VerifyResult

router = APIRouter(prefix="/internal/v1", tags=["internal"], dependencies=[Depends(require_service)])


@router.post("/verify", summary="Check a login (always 200; ok false for any failure)")
async def verify(request: VerifyRequest, parts: PartsDep) -> VerifyResult:
    return await parts.logins.verify(request)


@router.get(
    "/recipients/{address:path}",
    summary="Is this a local mailbox, and may it receive mail? Or an alias, and what does it expand to?",
)
async def recipient(address: str, parts: PartsDep) -> RecipientInfo:
    """A mailbox: `exists`, `enabled`, `quota_bytes`. An alias: `destinations`, its final recipients
    (nested aliases expanded, loops cut, bounded by YUBIN_AUTH_ALIAS_MAX_DEPTH and
    YUBIN_AUTH_ALIAS_MAX_RECIPIENTS; empty when it expands to nothing). Neither: `exists` false."""
    try:
        canonical = normalize_address(address)
    except InvalidAddress:
        # Not an address we could ever hold: simply not ours (the caller answers "no such user").
        return RecipientInfo(address=address[:320], exists=False)
    user = await parts.directory.get_user(canonical)
    if user is None:
        destinations = await parts.aliases.expand(canonical)
        return RecipientInfo(address=canonical, exists=False, destinations=destinations)
    return RecipientInfo(address=canonical, exists=True, enabled=user.enabled, quota_bytes=user.quota_bytes)


@router.get("/domains", summary="The local domains")
async def domains(parts: PartsDep) -> DomainList:
    return DomainList(domains=await parts.directory.domain_names())
