"""Scraping the services' `/metrics` for the map's rates and depths (rates.py does the arithmetic).

Every `interval_s` the console fetches every target at once. A target is named `SITE/ROLE` (the keys of
`yubin lab info --json`'s "metrics") and has one URL or several. A URL's host name is resolved again at
every round to all its addresses and each address is scraped as a process of its own: Docker's DNS
answers a compose service's name with every replica's address, so `--scale relay-alpha=3` is three
processes whose counters the map sums (an address given as such is scraped as it is). Each scrape is
bounded in time (it never outlives its round) and in size; an answer that breaks either is an error of
that target, shown on the map, and the others still count.
"""

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time

import httpx

from yubin.console.rates import Rates, Scraped

log = logging.getLogger(__name__)

MAX_BYTES = 1 << 20
"""A service's /metrics is some 20 KB; anything past a MiB is not one."""
TIMEOUT_S = 2.0


def site_of(target: str) -> str:
    return target.partition("/")[0]


async def addresses(host: str, port: int) -> list[str]:
    """Every address a host name has now (a literal address is itself)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class TooLarge(Exception):
    pass


class Scraper:
    def __init__(
        self, targets: dict[str, list[str]], rates: Rates, interval_s: float, timeout_s: float = TIMEOUT_S
    ) -> None:
        self.targets = targets
        self.rates = rates
        self.interval_s = interval_s
        self.timeout_s = min(timeout_s, interval_s)
        # trust_env=False: the services are reached directly, never through a proxy from the environment.
        self.http = httpx.AsyncClient(timeout=self.timeout_s, trust_env=False, follow_redirects=False)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.targets:
            self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.http.aclose()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.scrape_round()
            except Exception:  # one bad round must not stop the map's figures for good
                log.exception("metrics scrape round failed")
            await asyncio.sleep(max(0.0, self.interval_s - (loop.time() - started)))

    async def scrape_round(self) -> None:
        batches = await asyncio.gather(*(self._target(t, urls) for t, urls in self.targets.items()))
        self.rates.round(time.monotonic(), [one for batch in batches for one in batch])

    async def _target(self, target: str, urls: list[str]) -> list[Scraped]:
        site = site_of(target)
        found: list[Scraped] = []
        for raw in urls:
            url = httpx.URL(raw)
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                hosts = await asyncio.wait_for(addresses(url.host, port), self.timeout_s)
            except (OSError, TimeoutError) as exc:
                found.append(Scraped(site, f"{target} {raw}", error=f"cannot resolve {url.host}: {exc}"))
                continue
            found.extend(await asyncio.gather(*(self._one(site, str(url.copy_with(host=h))) for h in hosts)))
        return found

    async def _one(self, site: str, url: str) -> Scraped:
        try:
            async with asyncio.timeout(self.timeout_s):
                text = await self._fetch(url)
        except (httpx.HTTPError, OSError, TimeoutError, TooLarge, UnicodeDecodeError) as exc:
            return Scraped(site, url, error=f"{type(exc).__name__}: {exc}")
        return Scraped(site, url, text=text)

    async def _fetch(self, url: str) -> str:
        async with self.http.stream("GET", url) as response:
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise TooLarge(f"more than {MAX_BYTES} bytes")
            return body.decode()
