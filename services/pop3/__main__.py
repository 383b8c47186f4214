"""`python -m services.pop3`: the POP3 server, configured by `YUBIN_*` variables (`Pop3Settings`)."""

import asyncio
import logging

from services.pop3.lock import MaildropLocks
from services.pop3.maildrop import Maildirs
from services.pop3.server import Pop3Server, tls_context
from services.pop3.session import SessionEnv
from services.pop3.trace import TraceWriter
from shared.auth_client import AuthClient
from shared.config.pop3 import Pop3Settings
from shared.lifecycle import stop_on_signals
from shared.log import setup_logging
from shared.metrics import start_metrics_server
from shared.redis_client import connect_site

log = logging.getLogger("services.pop3")


async def main() -> None:
    settings = Pop3Settings()
    setup_logging("pop3", settings.log_level)
    start_metrics_server(settings)
    stop = stop_on_signals()
    redis = connect_site(settings)
    trace = TraceWriter(redis)
    try:
        async with AuthClient(settings) as auth:
            env = SessionEnv(
                settings=settings,
                auth=auth,
                locks=MaildropLocks(redis, settings.pop3_lock_ttl_ms),
                maildrops=Maildirs(settings.mail_root, redis),
                tls=tls_context(settings),
                trace=trace,
            )
            await Pop3Server(env).serve(stop)
    finally:
        await trace.aclose()
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
