"""Aliases: a local address that stands for one or more others (local mailboxes, remote addresses, other
aliases), kept next to the directory (key layout in `directory`).

Expansion (`expand`) is what the mail services see through the internal API: the final recipients, depth
first in the order given, each once. Like Postfix's virtual_alias_maps with its recursion and expansion
limits, it is bounded: an address already seen is not expanded again (a cycle or a self-reference just
ends there, and a recipient reached twice gets one copy), nesting deeper than `max_depth` or more than
`max_recipients` final recipients make the whole alias expand to nothing (the MX refuses it, 5.4.6), and
the log says why.
"""

import json
import logging
from datetime import datetime

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services.auth.addresses import domain_of
from services.auth.directory import (
    ALIASES,
    AlreadyExists,
    NotFound,
    alias_key,
    domain_aliases_key,
    domain_key,
    stage_alias,
    user_key,
)
from services.auth.paging import page_of_records
from shared.models import Alias, utcnow

log = logging.getLogger(__name__)


def _alias(address: str, fields: dict[bytes, bytes]) -> Alias:
    created = fields.get(b"created_at", b"")
    return Alias(
        address=address,
        destinations=json.loads(fields.get(b"destinations", b"[]")),
        created_at=datetime.fromisoformat(created.decode()) if created else None,
    )


class Aliases:
    def __init__(self, redis: Redis, *, max_depth: int, max_recipients: int) -> None:
        self.redis = redis
        self.max_depth = max_depth
        self.max_recipients = max_recipients

    async def add(self, address: str, destinations: list[str]) -> Alias:
        """A new alias in an existing local domain (NotFound), not taken by a user or alias (AlreadyExists)."""
        domain = domain_of(address)
        alias = Alias(address=address, destinations=destinations, created_at=utcnow())

        async def create(pipe: Pipeline) -> None:
            if not await pipe.exists(domain_key(domain)):
                raise NotFound(f"domain {domain} does not exist")
            if await pipe.exists(alias_key(address)):
                raise AlreadyExists(f"alias {address} already exists")
            if await pipe.exists(user_key(address)):
                raise AlreadyExists(f"{address} is a user; an address is a user or an alias")
            pipe.multi()
            stage_alias(pipe, address, destinations, alias.created_at)  # type: ignore[arg-type]

        await self.redis.transaction(create, domain_key(domain), alias_key(address), user_key(address))
        return alias

    async def get(self, address: str) -> Alias | None:
        fields = await self.redis.hgetall(alias_key(address))
        return _alias(address, fields) if fields else None

    async def page(self, domain: str | None, limit: int, offset: int) -> tuple[list[Alias], int]:
        """One page of aliases ordered by address, and how many there are in all."""
        index = domain_aliases_key(domain) if domain else ALIASES
        records, total = await page_of_records(self.redis, index, alias_key, limit, offset)
        return [_alias(address, fields) for address, fields in records], total

    async def delete(self, address: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(alias_key(address))
            pipe.zrem(ALIASES, address)
            pipe.zrem(domain_aliases_key(domain_of(address)), address)
            deleted, _, _ = await pipe.execute()
        if not deleted:
            raise NotFound(f"alias {address} does not exist")

    async def _destinations(self, address: str) -> list[str] | None:
        raw = await self.redis.hget(alias_key(address), "destinations")
        return None if raw is None else json.loads(raw)

    async def expand(self, address: str) -> list[str] | None:
        """None if `address` is no alias; else its final recipients (empty: loop or over the limits)."""
        top = await self._destinations(address)
        if top is None:
            return None
        final: list[str] = []
        seen = {address}
        stack = [(destination, 1) for destination in reversed(top)]
        while stack:
            destination, depth = stack.pop()
            if destination in seen:
                continue
            seen.add(destination)
            # Every address visited costs a lookup: bounded like the recipients, so a wide tree of
            # aliases cannot make one RCPT do unbounded work.
            if len(seen) > 4 * self.max_recipients:
                log.warning("alias expansion too large", extra={"alias": address})
                return []
            nested = await self._destinations(destination)
            if nested is None:
                final.append(destination)
                if len(final) > self.max_recipients:
                    log.warning("alias expands to too many recipients", extra={"alias": address})
                    return []
            elif depth >= self.max_depth:
                log.warning("alias nested too deep", extra={"alias": address, "max_depth": self.max_depth})
                return []
            else:
                stack.extend((d, depth + 1) for d in reversed(nested))
        if not final:
            log.warning("alias expands to no recipient (a loop)", extra={"alias": address})
        return final
