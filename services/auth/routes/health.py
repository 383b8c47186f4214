"""Liveness for orchestration: healthy when Redis (the whole directory) answers."""

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from services.auth.deps import PartsDep

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="200 when Redis answers, 503 when not")
async def healthz(parts: PartsDep) -> JSONResponse:
    try:
        await parts.redis.ping()
    except (RedisError, OSError) as exc:
        # The reason goes to the log, not to whoever asks (this route needs no token).
        log.warning("health check: redis unavailable", extra={"error": str(exc)})
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})
