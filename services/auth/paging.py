"""Pages of the directory's records: a sorted-set index of addresses, one hash per address."""

from collections.abc import Callable

from redis.asyncio import Redis


async def page_of_records(
    redis: Redis, index: str, key_of: Callable[[str], str], limit: int, offset: int
) -> tuple[list[tuple[str, dict[bytes, bytes]]], int]:
    """`limit` (address, hash fields) pairs from `offset` in the index's order, and the index's size.

    A record deleted between the two reads is left out rather than returned empty.
    """
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrange(index, offset, offset + limit - 1)
        pipe.zcard(index)
        page, total = await pipe.execute()
    addresses = [a.decode() for a in page]
    async with redis.pipeline(transaction=False) as pipe:
        for address in addresses:
            pipe.hgetall(key_of(address))
        records = await pipe.execute()
    return [(a, f) for a, f in zip(addresses, records, strict=True) if f], total
