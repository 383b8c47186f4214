"""Every use of aiosmtpd's private names, in one place, behind public names the session uses instead.

aiosmtpd (pinned `>=1.4.6,<1.5` in pyproject.toml) has no public hooks for some of what the reception
session must do: refuse a connection before the greeting, keep the idle timer running through DATA, give
the envelope our own fields, parse addresses faster, read DATA itself. `AiosmtpdSession` is the only
code that touches aiosmtpd's underscore names: it turns the methods aiosmtpd calls into public methods a
subclass overrides, and the state it keeps into read-only properties. `PRIVATE_NAMES` lists each name
with why we need it and the aiosmtpd release that introduced it in its current form;
tests/unit/submission/test_aiosmtpd_adapter.py checks every one of them on the installed aiosmtpd (and
that no other module of the package touches an aiosmtpd private name), so an upgrade that renames or
removes one fails there, by name, instead of in the middle of a session.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope


@dataclass(frozen=True)
class PrivateName:
    name: str
    kind: str  # "method", "coroutine method" (both on the class) or "attribute" (on a connected instance)
    parameters: tuple[str, ...]  # of a method, `self` included; () for an attribute
    since: str  # the aiosmtpd release with the name in this form
    why: str


PRIVATE_NAMES = (
    PrivateName(
        "_handle_client",
        "coroutine method",
        ("self",),
        "1.1",
        "the command loop; overridden to refuse a connection (limit, shutdown) before the 220 greeting",
    ),
    PrivateName(
        "_timeout_cb",
        "method",
        ("self",),
        "1.2",
        "the idle timer firing; overridden so a DATA transfer that is still moving is not cut off",
    ),
    PrivateName(
        "_reset_timeout",
        "method",
        ("self", "duration"),
        "1.4.0",
        "restarts the idle timer per command; overridden to note the activity, called to re-arm it",
    ),
    PrivateName(
        "_create_envelope",
        "method",
        ("self",),
        "1.0",
        "the envelope factory; overridden so every transaction carries our policy's decisions",
    ),
    PrivateName(
        "_getaddr",
        "method",
        ("self", "arg"),
        "1.3.0",
        "the MAIL/RCPT path parser; overridden with a fast path for plain <local@domain>",
    ),
    PrivateName(
        "_set_rset_state",
        "method",
        ("self",),
        "1.0",
        "resets the transaction; EHLO/HELO must (RFC 5321 §4.1.4) and ours replace aiosmtpd's",
    ),
    PrivateName(
        "_set_post_data_state",
        "method",
        ("self",),
        "1.0",
        "ends the transaction after DATA; our DATA replaces aiosmtpd's",
    ),
    PrivateName(
        "_call_handler_hook",
        "coroutine method",
        ("self", "command", "args"),
        "1.0",
        "runs handler.handle_DATA (with aiosmtpd's handler lookup) from our DATA",
    ),
    PrivateName(
        "_reader",
        "attribute",
        (),
        "1.0",
        "the connection's StreamReader: our DATA reads the message itself (strict CRLF, limits)",
    ),
    PrivateName(
        "_tls_protocol",
        "attribute",
        (),
        "1.0",
        "set once STARTTLS succeeded: whether TLS is active (EHLO, AUTH, the Received field)",
    ),
    PrivateName(
        "_original_transport",
        "attribute",
        (),
        "1.1",
        "set by STARTTLS: tells the connection_made of the TLS re-entry from the first one",
    ),
    PrivateName(
        "_handler_coroutine",
        "attribute",
        (),
        "1.0",
        "the command loop's task: cancelled to end a session from inside it (421 after too many errors)",
    ),
    PrivateName(
        "_timeout_duration",
        "attribute",
        (),
        "1.2",
        "the idle timeout given to __init__: the DATA-aware idle timer re-arms with what is left of it",
    ),
    PrivateName(
        "_timeout_handle",
        "attribute",
        (),
        "1.2",
        "the idle timer (None once the session is closing): stress mode re-arms only a running timer",
    ),
)


_VERB_NAMES: dict[type, list[str]] = {}


class AiosmtpdSession(SMTP):
    """aiosmtpd's SMTP with its private hooks as public methods, and its private state as properties."""

    def __dir__(self) -> list[str]:
        """Only the `smtp_*` and `auth_*` names, worked out once per class.

        aiosmtpd's __init__ finds a session's verbs and SASL mechanisms by scanning `dir(self)` and
        `inspect.getmembers(self)` (every attribute fetched, properties included): about 0.3-0.6 ms of CPU
        for every connection, over 10 % of what the MX spends on a message when each comes on a connection
        of its own. Those are the only scans of a session's names, and they keep only these prefixes,
        which name methods of the class: the same for every instance."""
        names = _VERB_NAMES.get(type(self))
        if names is None:
            names = sorted(n for n in dir(type(self)) if n.startswith(("smtp_", "auth_")))
            _VERB_NAMES[type(self)] = names
        return list(names)

    # --- what aiosmtpd calls: each hands over to the public method below -----------------------------

    async def _handle_client(self) -> None:
        await self.serve_commands()

    def _timeout_cb(self) -> None:
        self.on_idle_timeout()

    def _reset_timeout(self, duration: float | None = None) -> None:
        self.restart_idle_timer(duration)

    def _create_envelope(self) -> Envelope:
        return self.new_envelope()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        return self.parse_path(arg)

    # --- aiosmtpd's behaviour; a subclass overrides these and calls super() -------------------------

    async def serve_commands(self) -> None:
        """Greet, then read and run commands until the connection ends."""
        await SMTP._handle_client(self)

    def on_idle_timeout(self) -> None:
        """The idle timer fired: aiosmtpd closes the connection."""
        SMTP._timeout_cb(self)

    def restart_idle_timer(self, duration: float | None = None) -> None:
        """Called per command (and at connect): the idle timer starts again, `duration` or the timeout."""
        SMTP._reset_timeout(self, duration)

    def new_envelope(self) -> Envelope:
        return SMTP._create_envelope(self)

    def parse_path(self, arg: str) -> tuple[str | None, str | None]:
        """(address, rest of the line) of a MAIL/RCPT argument; (None, None) when it does not parse."""
        return SMTP._getaddr(self, arg)

    # --- aiosmtpd's state, for the session ---------------------------------------------------------

    @property
    def command_reader(self) -> asyncio.StreamReader:
        return self._reader  # type: ignore[no-any-return]

    @property
    def command_waiting(self) -> bool:
        """A whole command line is already buffered (a pipelining client, RFC 2920), so the command loop
        goes on without reading from the network. (asyncio's StreamReader has no public way to peek.)"""
        return b"\n" in self._reader._buffer

    @property
    def tls_active(self) -> bool:
        return self._tls_protocol is not None

    @property
    def starttls_seen(self) -> bool:
        """STARTTLS has replaced the transport (connection_made is then called a second time)."""
        return self._original_transport is not None

    @property
    def command_task(self) -> "asyncio.Task[None] | None":
        return self._handler_coroutine

    @property
    def idle_timeout_s(self) -> float:
        return self._timeout_duration  # type: ignore[no-any-return]

    @property
    def idle_timer_armed(self) -> bool:
        return self._timeout_handle is not None

    def reset_transaction(self) -> None:
        """A fresh envelope (EHLO, HELO; RFC 5321 §4.1.4)."""
        self._set_rset_state()

    def end_transaction(self) -> None:
        """A fresh envelope after DATA (RFC 5321 §4.1.1.4)."""
        self._set_post_data_state()

    async def run_handler_hook(self, command: str, *args: Any) -> Any:
        """The handler's `handle_<command>` (aiosmtpd's MISSING when it has none)."""
        return await self._call_handler_hook(command, *args)
