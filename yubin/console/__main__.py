"""`python -m yubin.console`: serve the console; print its URL and, if it made one, its password."""

import secrets
import sys

import uvicorn

from shared.log import setup_logging
from yubin.console.app import create_app
from yubin.console.settings import ConsoleSettings


def main() -> int:
    settings = ConsoleSettings()
    setup_logging("console", settings.log_level)
    generated = settings.password is None
    password = secrets.token_urlsafe(12) if generated else settings.password.get_secret_value()
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    print(f"Yubin console: http://{host}:{settings.port}/", file=sys.stderr, flush=True)
    if generated:
        print(f"console password: {password}", file=sys.stderr, flush=True)
    app = create_app(settings, password)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
