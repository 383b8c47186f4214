"""Exit codes of `yubin` and the error that carries one. Scripts can tell "try again" from "give up"."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    """Anything else: a file that cannot be read, an unexpected answer."""
    USAGE = 2
    """Bad command line (argparse's code)."""
    UNAVAILABLE = 3
    """The server cannot be reached (connection refused, timeout, TLS handshake failed)."""
    AUTH_FAILED = 4
    """The server refused the user name or password (SMTP 535, POP3 -ERR at login, HTTP 401)."""
    REJECTED = 5
    """The server refused the request for good (SMTP 5xx, HTTP 4xx other than 401)."""
    TEMPORARY = 6
    """The server failed temporarily; trying again later may work (SMTP 4xx, POP3 [SYS/TEMP] or
    [IN-USE], login throttled, HTTP 5xx)."""
    NO_LAB = 7
    """`--lab` was given but no running lab was found."""
    INTERRUPTED = 130


class CliError(Exception):
    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code
