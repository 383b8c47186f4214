"""Delivering one envelope's recipients in one domain: resolve the route, then try host after host.

RFC 5321 §5.1: try the MX hosts in order and each address of each host, until one of them takes the
transaction. Recipients a host refused temporarily are offered to the next host too (as Postfix does);
what is left when the hosts run out keeps the last answer it got. Every attempt goes to the trace.
"""

import logging
from collections.abc import Callable
from typing import Any

from services.relay import metrics
from services.relay.connection_cache import ConnectionCache
from services.relay.mx import DnsLookup, Route, RouteError, resolve_route
from services.relay.smtp_session import Accepted, SessionOptions, SessionResult, StartTlsFailed, send_via
from shared.models import RecipientState, RecipientStatus

log = logging.getLogger(__name__)

Trace = Callable[[str, dict[str, Any]], None]
"""Records a trace event (the handler writes them with the attempt's outcome)."""


def smtp_path_ok(address: str, *, mailbox: bool) -> bool:
    """Whether an address can go into MAIL FROM/RCPT TO as is: no control characters, no brackets."""
    if len(address) > 256 or any(ord(c) < 32 or ord(c) == 127 or c in "<>" for c in address):
        return False
    return "@" in address if mailbox else True


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


class DomainDelivery:
    """Everything needed to deliver to one domain; one instance per relay process."""

    def __init__(
        self,
        lookup: DnsLookup,
        options: SessionOptions,
        *,
        own_names: set[str],
        own_addresses: set[str],
        connections: ConnectionCache | None = None,
    ) -> None:
        self.lookup = lookup
        self.options = options
        self.connections = connections
        self.own_names = own_names
        self.own_addresses = own_addresses

    async def route(self, domain: str, trace: Trace) -> Route:
        try:
            route = await resolve_route(
                self.lookup, domain, own_names=self.own_names, own_addresses=self.own_addresses
            )
        except RouteError as exc:
            metrics.MX_LOOKUPS.labels("failed").inc()
            trace("mx-lookup", {"domain": domain, "error": exc.message, "status": exc.status})
            raise
        metrics.MX_LOOKUPS.labels("ok").inc()
        trace("mx-lookup", {"domain": domain, "implicit_mx": route.implicit, "answer": route.describe()})
        return route

    async def deliver(
        self,
        domain: str,
        sender: str,
        recipients: list[str],
        body: bytes,
        trace: Trace,
        on_accepted: Accepted | None = None,
    ) -> list[RecipientStatus]:
        try:
            route = await self.route(domain, trace)
        except RouteError as exc:
            state = RecipientState.FAILED if exc.permanent else RecipientState.DEFERRED
            return [
                RecipientStatus(recipient=r, state=state, status=exc.status, diagnostic=exc.message)
                for r in recipients
            ]

        final: dict[str, RecipientStatus] = {}
        last: dict[str, RecipientStatus] = {}
        pending = list(recipients)
        for host in route.hosts:
            for address in host.addresses:
                result = await self._session(address, host.name, sender, pending, body, on_accepted)
                trace(
                    "attempt",
                    {
                        "domain": domain,
                        "host": host.name,
                        "address": address,
                        "port": self.options.port,
                        "tls": result.tls,
                        "reply": result.reply,
                        "recipients": {s.recipient: s.status for s in result.statuses},
                    },
                )
                for status in result.statuses:
                    last[status.recipient] = status
                    if not result.host_failure and status.state != RecipientState.DEFERRED:
                        final[status.recipient] = status
                pending = [r for r in pending if r not in final]
                if not pending:
                    return [final[r] for r in recipients]
                if not result.host_failure:
                    break  # this host answered; the rest may take the deferred ones: next host
        return [final.get(r) or last[r] for r in recipients]

    async def _session(
        self,
        address: str,
        mx_name: str,
        sender: str,
        recipients: list[str],
        body: bytes,
        on_accepted: Accepted | None,
    ) -> SessionResult:
        try:
            return await send_via(
                address,
                mx_name,
                sender,
                recipients,
                body,
                self.options,
                on_accepted=on_accepted,
                cache=self.connections,
            )
        except StartTlsFailed as exc:
            # Opportunistic TLS only (verification off): a broken TLS stack on the other side must not
            # stop the mail. With verification on, `send_via` defers instead (4.7.5) and never gets here.
            log.warning(
                "STARTTLS failed, retrying in plain text",
                extra={"host": mx_name, "address": address, "error": str(exc)},
            )
            return await send_via(
                address,
                mx_name,
                sender,
                recipients,
                body,
                self.options,
                use_tls=False,
                on_accepted=on_accepted,
                cache=self.connections,
            )
