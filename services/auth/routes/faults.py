"""Admin API: lab faults (an MX answering 4xx/5xx, dropping or delaying; DNS SERVFAIL for a domain).

The faults live in the site's Redis with their expiry (`shared.faults`); the MX listener and the lab's DNS
front apply them. Each change is logged here and written to the trace stream. See docs/faults.md.
"""

import logging

from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import BaseModel, Field

from services.auth.deps import PartsDep, require_admin
from shared.faults import Fault, FaultSpec, FaultStore, TooManyFaults

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/faults", tags=["faults"], dependencies=[Depends(require_admin)])


class FaultList(BaseModel):
    faults: list[Fault] = Field(description="The active faults, oldest first.")


@router.get("", summary="The active faults of this site")
async def list_faults(parts: PartsDep) -> FaultList:
    return FaultList(faults=await FaultStore(parts.redis).active(prune=True))


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a fault (422 if it does not fit its kind)")
async def add_fault(spec: FaultSpec, parts: PartsDep) -> Fault:
    try:
        fault = await FaultStore(parts.redis).add(spec)
    except TooManyFaults as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    log.info("fault added", extra={"fault": fault.model_dump(mode="json", exclude_none=True)})
    return fault


@router.delete(
    "/{fault_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a fault (404 if there is none)"
)
async def remove_fault(fault_id: str, parts: PartsDep) -> Response:
    fault = await FaultStore(parts.redis).remove(fault_id)
    if fault is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such fault (it may have expired)")
    log.info("fault removed", extra={"fault": fault.model_dump(mode="json", exclude_none=True)})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
