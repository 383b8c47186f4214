"""`python -m services.delivery`: consume LOCAL_DELIVERY until SIGTERM, then finish in-flight work, exit 0."""

import asyncio
import logging

from services.delivery.handler import Deliverer
from services.delivery.retry_queue import delivery_retry_queue
from shared.auth_client import AuthClient
from shared.bus import Consumer, run_consumer
from shared.config.delivery import DeliverySettings
from shared.lifecycle import stop_on_signals
from shared.log import setup_logging
from shared.mailbox_usage import MailboxUsage
from shared.redis_client import connect_site
from shared.streams import DELIVERY_GROUP, LOCAL_DELIVERY

log = logging.getLogger("services.delivery")


async def main() -> None:
    settings = DeliverySettings()
    setup_logging("delivery", settings.log_level)
    stop = stop_on_signals()
    settings.mail_root.mkdir(mode=0o755, parents=True, exist_ok=True)
    redis = connect_site(settings)
    try:
        async with AuthClient(settings) as auth:
            consumer = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, settings)
            retry = delivery_retry_queue(redis)
            deliverer = Deliverer(settings, redis, auth, consumer, retry)
            # The reconciliation: whatever drifted is counted afresh, mailbox by mailbox, on next use.
            await MailboxUsage(redis).forget_all()
            scheduler = asyncio.create_task(retry.run(stop, settings.delivery_scheduler_poll_s))
            log.info(
                "delivery started",
                extra={"mail_root": str(settings.mail_root), "consumer": consumer.name},
            )
            await run_consumer(consumer, deliverer.handle, stop)
            await scheduler
    finally:
        await redis.aclose()
    log.info("delivery stopped")


if __name__ == "__main__":
    asyncio.run(main())
