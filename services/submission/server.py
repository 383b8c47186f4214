"""Running one role: listen, serve sessions, and on SIGTERM stop accepting and let sessions finish."""

import asyncio
import logging

from services.submission import replies
from services.submission.acceptance import RedisMessageQueue
from services.submission.connections import SessionRegistry
from services.submission.handler import ReceptionHandler
from services.submission.local_domains import LocalDomains
from services.submission.mx_policy import MxPolicy
from services.submission.policy import RolePolicy
from services.submission.session import ReceptionSMTP
from services.submission.submission_policy import SubmissionPolicy
from services.submission.tls import server_tls_context
from shared.auth_client import AuthClient
from shared.config.submission import SmtpRole, SubmissionSettings
from shared.redis_client import connect_site

log = logging.getLogger(__name__)


def role_policy(settings: SubmissionSettings, auth: AuthClient) -> RolePolicy:
    domains = LocalDomains(auth, settings.local_domains_refresh_s)
    if settings.smtp_role is SmtpRole.MX:
        return MxPolicy(auth, domains)
    return SubmissionPolicy(auth, domains)


async def serve(settings: SubmissionSettings, stop: asyncio.Event) -> None:
    redis = connect_site(settings)
    auth = AuthClient(settings)
    policy = role_policy(settings, auth)
    handler = ReceptionHandler(settings, policy, RedisMessageQueue(redis))
    registry = SessionRegistry.for_listener(settings)
    tls_context = server_tls_context(settings)

    def new_session() -> ReceptionSMTP:
        return ReceptionSMTP(
            handler, settings=settings, policy=policy, auth=auth, registry=registry, tls_context=tls_context
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(new_session, settings.smtp_host, settings.listen_port)
    log.info(
        "listening",
        extra={
            "role": settings.smtp_role.value,
            "host": settings.smtp_host,
            "port": settings.listen_port,
            "starttls": tls_context is not None,
        },
    )
    try:
        await stop.wait()
    finally:
        server.close()  # no new connections from here on
        log.info("draining sessions", extra={"sessions": len(registry)})
        await registry.drain(settings.shutdown_grace_s, replies.SHUTTING_DOWN)
        await auth.aclose()
        await redis.aclose()
        log.info("stopped")
