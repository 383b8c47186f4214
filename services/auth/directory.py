"""The user directory: domains and users in Redis (AOF, appendfsync always), keys under `yubin:auth:`.

    yubin:auth:domains                 sorted set of domain names (all scores 0: ordered by name)
    yubin:auth:domain:<name>           hash: created_at
    yubin:auth:users                   sorted set of all addresses
    yubin:auth:domain-users:<name>     sorted set of the domain's addresses
    yubin:auth:user:<address>          hash: password_hash, enabled (1/0), quota_bytes ("" = none), created_at
    yubin:auth:aliases                 sorted set of all alias addresses
    yubin:auth:domain-aliases:<name>   sorted set of the domain's alias addresses
    yubin:auth:alias:<address>         hash: destinations (JSON list), created_at   (see `aliases`)

An address is a user or an alias, never both (each creation checks the other key in its transaction).

Changes that check something first (the domain exists, the user does not) run as WATCH/MULTI/EXEC
transactions, so a user is never created in a domain being deleted. Names are canonical (see addresses).
"""

import json
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services.auth.addresses import domain_of
from services.auth.paging import page_of_records
from shared.models import Domain, User, utcnow

PREFIX = "yubin:auth:"
DOMAINS = f"{PREFIX}domains"
USERS = f"{PREFIX}users"


def domain_key(name: str) -> str:
    return f"{PREFIX}domain:{name}"


def domain_users_key(name: str) -> str:
    return f"{PREFIX}domain-users:{name}"


def user_key(address: str) -> str:
    return f"{PREFIX}user:{address}"


ALIASES = f"{PREFIX}aliases"


def alias_key(address: str) -> str:
    return f"{PREFIX}alias:{address}"


def domain_aliases_key(name: str) -> str:
    return f"{PREFIX}domain-aliases:{name}"


def stage_alias(pipe: Pipeline, address: str, destinations: list[str], created_at: datetime) -> None:
    """Stage writing one alias (the caller has checked that neither a user nor an alias has the name)."""
    fields = {"destinations": json.dumps(destinations), "created_at": created_at.isoformat()}
    pipe.hset(alias_key(address), mapping=fields)
    pipe.zadd(ALIASES, {address: 0})
    pipe.zadd(domain_aliases_key(domain_of(address)), {address: 0})


ROLE_ALIASES = ("postmaster", "abuse")
"""Created with every domain when a target is given: RFC 5321 §4.5.1 (postmaster) and RFC 2142 (abuse)."""


class DirectoryError(Exception):
    """A change the directory refuses; the message is meant for the admin."""


class NotFound(DirectoryError):
    pass


class AlreadyExists(DirectoryError):
    pass


class DomainHasUsers(DirectoryError):
    pass


@dataclass(frozen=True)
class StoredUser:
    address: str
    password_hash: str
    enabled: bool
    quota_bytes: int | None
    created_at: datetime | None

    def public(self) -> User:
        """What the APIs may show: everything but the hash."""
        return User(
            address=self.address,
            enabled=self.enabled,
            quota_bytes=self.quota_bytes,
            created_at=self.created_at,
        )

    @classmethod
    def from_redis(cls, address: str, fields: dict[bytes, bytes]) -> "StoredUser":
        quota = fields.get(b"quota_bytes", b"")
        created = fields.get(b"created_at", b"")
        return cls(
            address=address,
            password_hash=fields.get(b"password_hash", b"").decode(),
            enabled=fields.get(b"enabled", b"1") == b"1",
            quota_bytes=int(quota) if quota else None,
            created_at=datetime.fromisoformat(created.decode()) if created else None,
        )


def _user_fields(password_hash: str, enabled: bool, quota_bytes: int | None) -> dict[str, str]:
    return {
        "password_hash": password_hash,
        "enabled": "1" if enabled else "0",
        "quota_bytes": "" if quota_bytes is None else str(quota_bytes),
    }


class Directory:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    # Domains

    async def add_domain(self, name: str, postmaster: str | None = None) -> Domain:
        """A new domain; with `postmaster`, also its postmaster@ and abuse@ aliases pointing there."""
        created_at = utcnow()
        roles = [f"{role}@{name}" for role in ROLE_ALIASES] if postmaster else []

        async def create(pipe: Pipeline) -> None:
            if await pipe.exists(domain_key(name)):
                raise AlreadyExists(f"domain {name} already exists")
            pipe.multi()
            pipe.hset(domain_key(name), mapping={"created_at": created_at.isoformat()})
            pipe.zadd(DOMAINS, {name: 0})
            for address in roles:
                stage_alias(pipe, address, [postmaster], created_at)  # type: ignore[list-item]

        # A new domain has no users or aliases, except leftovers of a half-deleted one: the WATCH on
        # domain_key covers that (deletion removes them in the same transaction).
        await self.redis.transaction(create, domain_key(name))
        return Domain(name=name, created_at=created_at)

    async def domain_names(self) -> list[str]:
        return [name.decode() for name in await self.redis.zrange(DOMAINS, 0, -1)]

    async def domains(self) -> list[Domain]:
        names = await self.domain_names()
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hget(domain_key(name), "created_at")
            created = await pipe.execute()
        return [
            Domain(name=name, created_at=datetime.fromisoformat(c.decode()) if c else None)
            for name, c in zip(names, created, strict=True)
        ]

    async def domain_exists(self, name: str) -> bool:
        return bool(await self.redis.exists(domain_key(name)))

    async def delete_domain(self, name: str, *, force: bool) -> None:
        """Delete a domain; with `force` its users too, otherwise refuse while it has any."""

        async def delete(pipe: Pipeline) -> None:
            if not await pipe.exists(domain_key(name)):
                raise NotFound(f"domain {name} does not exist")
            addresses = [a.decode() for a in await pipe.zrange(domain_users_key(name), 0, -1)]
            aliases = [a.decode() for a in await pipe.zrange(domain_aliases_key(name), 0, -1)]
            if addresses and not force:
                raise DomainHasUsers(
                    f"domain {name} still has {len(addresses)} user(s); delete them or use ?force=true"
                )
            pipe.multi()
            for address in addresses:
                pipe.delete(user_key(address))
            if addresses:
                pipe.zrem(USERS, *addresses)
            for address in aliases:  # a domain's aliases go with it; they hold no mail
                pipe.delete(alias_key(address))
            if aliases:
                pipe.zrem(ALIASES, *aliases)
            pipe.delete(domain_users_key(name), domain_aliases_key(name), domain_key(name))
            pipe.zrem(DOMAINS, name)

        await self.redis.transaction(
            delete, domain_key(name), domain_users_key(name), domain_aliases_key(name)
        )

    # Users

    async def add_user(self, address: str, password_hash: str, quota_bytes: int | None) -> StoredUser:
        domain = domain_of(address)
        user = StoredUser(address, password_hash, True, quota_bytes, utcnow())

        async def create(pipe: Pipeline) -> None:
            if not await pipe.exists(domain_key(domain)):
                raise NotFound(f"domain {domain} does not exist")
            if await pipe.exists(user_key(address)):
                raise AlreadyExists(f"user {address} already exists")
            if await pipe.exists(alias_key(address)):
                raise AlreadyExists(f"{address} is an alias; delete the alias first")
            pipe.multi()
            fields = _user_fields(password_hash, True, quota_bytes)
            pipe.hset(user_key(address), mapping={**fields, "created_at": user.created_at.isoformat()})
            pipe.zadd(USERS, {address: 0})
            pipe.zadd(domain_users_key(domain), {address: 0})

        await self.redis.transaction(create, domain_key(domain), user_key(address), alias_key(address))
        return user

    async def get_user(self, address: str) -> StoredUser | None:
        fields = await self.redis.hgetall(user_key(address))
        return StoredUser.from_redis(address, fields) if fields else None

    async def list_users(self, domain: str | None, limit: int, offset: int) -> tuple[list[StoredUser], int]:
        """One page of users ordered by address, and how many there are in all."""
        index = domain_users_key(domain) if domain else USERS
        records, total = await page_of_records(self.redis, index, user_key, limit, offset)
        return [StoredUser.from_redis(address, fields) for address, fields in records], total

    async def update_user(
        self,
        address: str,
        *,
        password_hash: str | None = None,
        enabled: bool | None = None,
        quota_bytes: int | None = None,
        set_quota: bool = False,
    ) -> StoredUser:
        """Change some of a user's fields (`set_quota` because None is a quota: unlimited)."""

        async def update(pipe: Pipeline) -> None:
            if not await pipe.exists(user_key(address)):
                raise NotFound(f"user {address} does not exist")
            changes: dict[str, str] = {}
            if password_hash is not None:
                changes["password_hash"] = password_hash
            if enabled is not None:
                changes["enabled"] = "1" if enabled else "0"
            if set_quota:
                changes["quota_bytes"] = "" if quota_bytes is None else str(quota_bytes)
            pipe.multi()
            if changes:
                pipe.hset(user_key(address), mapping=changes)

        await self.redis.transaction(update, user_key(address))
        user = await self.get_user(address)
        if user is None:
            raise NotFound(f"user {address} does not exist")
        return user

    async def replace_hash(self, address: str, old_hash: str, new_hash: str) -> bool:
        """Swap in an upgraded hash, unless the password was changed meanwhile."""

        async def swap(pipe: Pipeline) -> bool:
            current = await pipe.hget(user_key(address), "password_hash")
            if current is None or current.decode() != old_hash:
                return False
            pipe.multi()
            pipe.hset(user_key(address), "password_hash", new_hash)
            return True

        return await self.redis.transaction(swap, user_key(address), value_from_callable=True)

    async def delete_user(self, address: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(user_key(address))
            pipe.zrem(USERS, address)
            pipe.zrem(domain_users_key(domain_of(address)), address)
            deleted, _, _ = await pipe.execute()
        if not deleted:
            raise NotFound(f"user {address} does not exist")
