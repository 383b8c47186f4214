"""`python -m services.submission` with YUBIN_SMTP_ROLE=submission (587) or mx (25)."""

import asyncio

from services.submission.server import serve
from shared.config.submission import SubmissionSettings
from shared.lifecycle import stop_on_signals
from shared.log import setup_logging
from shared.metrics import start_metrics_server


async def main() -> None:
    settings = SubmissionSettings()
    setup_logging(settings.smtp_role.value, settings.log_level)
    start_metrics_server(settings)
    await serve(settings, stop_on_signals())


if __name__ == "__main__":
    asyncio.run(main())
