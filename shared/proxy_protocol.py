"""The receiving side of the PROXY protocol, version 2 (HAProxy's doc/proxy-protocol.txt §2.2): a front
(HAProxy) that accepted the client's connection opens its own to us and sends, before anything else, a
binary header saying whose connection it is. The SMTP listeners and POP3 use it, so that per-address
limits, throttling, Received headers and logs see the client and not the front.

Only fronts listed in YUBIN_PROXY_PROTOCOL_FROM (`TrustedFronts`) are believed: a connection from one of
them must begin with a header (`read_header`), and anyone else who sends one is refused
(`starts_like_header`), since the header is just bytes that anybody can send.

Written here rather than taken from aiosmtpd's `aiosmtpd.proxy_protocol.get_proxy` (which the POP3
server would then have to import from the SMTP library): get_proxy reads the whole length the header
declares (up to 64 KiB) before it can be refused, and takes the text version 1 as well. The binary
header is 16 octets and an address block; this reads the 16, checks them octet by octet as they arrive
(a client that is not a front is refused at its first wrong octet), and reads at most
`MAX_ADDRESS_BLOCK` more, all within one timeout.
"""

import asyncio
import enum
import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"  # §2.2: cannot begin a valid SMTP, POP3 or HTTP exchange
V1_SIGNATURE = b"PROXY "  # the text version (§2.1), which we do not speak but recognise
FIXED_LENGTH = 16  # signature, version/command, family/protocol, length of the address block
MAX_ADDRESS_BLOCK = 1024
"""The most we read after the fixed 16 octets. Addresses take at most 216 (AF_UNIX); the rest would be
TLVs, which HAProxy's `send-proxy-v2` sends none of unless told to (`proxy-v2-options`)."""


class Command(enum.IntEnum):
    LOCAL = 0  # the front's own connection (health checks): no client behind it
    PROXY = 1  # on behalf of a client, whose address follows


class Family(enum.IntEnum):
    UNSPEC = 0
    INET = 1
    INET6 = 2
    UNIX = 3


class Transport(enum.IntEnum):
    UNSPEC = 0
    STREAM = 1
    DGRAM = 2


_ADDRESS_BLOCK = {Family.INET: 12, Family.INET6: 36, Family.UNIX: 216}  # §2.2, per family


class ProxyHeaderError(Exception):
    """No valid header: the connection is closed without a word (the front logs it)."""


@dataclass(frozen=True)
class ProxyHeader:
    command: Command
    client: tuple[str, int] | None
    """The client's address and port, or None when the header carries none we use (LOCAL, UNSPEC, a
    Unix socket): the spec then says to use the connection's own endpoints, i.e. the front's."""


class TrustedFronts:
    """The addresses (and networks) allowed to send a header; empty: the PROXY protocol is off."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks if n.strip())

    @classmethod
    def parse(cls, setting: str) -> "TrustedFronts":
        """From the comma-separated setting: `172.28.0.0/16, 10.0.0.5`; ValueError if one does not parse."""
        return cls(setting.split(","))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        return any(ip in network for network in self.networks)


def starts_like_header(first: bytes) -> bool | None:
    """Whether the first octets of a connection are the start of a PROXY header (either version): True,
    False, or None while there are too few to tell. For connections from addresses that are not fronts."""
    for signature in (SIGNATURE, V1_SIGNATURE):
        n = min(len(first), len(signature))
        if first[:n] == signature[:n]:
            return True if n == len(signature) else None
    return False


class FirstOctets:
    """Watches the first octets of a connection from an address that is not a trusted front, for a PROXY
    header it has no right to send. Costs nothing once the first octet that cannot begin one arrived."""

    def __init__(self) -> None:
        self._seen: bytes | None = b""  # None once judged innocent

    def header_seen(self, data: bytes) -> bool:
        """Feed what arrived; True once the connection has begun with a PROXY signature."""
        if self._seen is None:
            return False
        self._seen = (self._seen + data)[: len(SIGNATURE)]
        verdict = starts_like_header(self._seen)
        if verdict is False:
            self._seen = None
        return bool(verdict)


def parse_fixed(fixed: bytes) -> tuple[Command, int]:
    """The command and the length of the address block, from the first 16 octets."""
    if len(fixed) != FIXED_LENGTH or fixed[:12] != SIGNATURE:
        raise ProxyHeaderError("not a PROXY v2 header")
    version_command, _, length = struct.unpack("!BBH", fixed[12:])
    if version_command >> 4 != 2:
        raise ProxyHeaderError(f"unsupported PROXY protocol version {version_command >> 4}")
    try:
        command = Command(version_command & 0x0F)
    except ValueError:
        raise ProxyHeaderError(f"unknown PROXY command {version_command & 0x0F}") from None
    if length > MAX_ADDRESS_BLOCK:
        raise ProxyHeaderError(f"PROXY header too long ({length} octets after the first 16)")
    return command, length


def parse(header: bytes) -> ProxyHeader:
    """A whole header: the fixed 16 octets and the address block (TLVs after the addresses are ignored)."""
    command, length = parse_fixed(header[:FIXED_LENGTH])
    block = header[FIXED_LENGTH:]
    if len(block) != length:
        raise ProxyHeaderError("PROXY header truncated")
    if command is Command.LOCAL:
        return ProxyHeader(command, None)  # §2.2: the family and the address block are to be ignored
    try:
        family, transport = Family(header[13] >> 4), Transport(header[13] & 0x0F)
    except ValueError:
        raise ProxyHeaderError(f"unknown PROXY address family or protocol 0x{header[13]:02x}") from None
    if transport is Transport.DGRAM:
        raise ProxyHeaderError("PROXY header for a datagram connection")
    if len(block) < _ADDRESS_BLOCK.get(family, 0):
        raise ProxyHeaderError("PROXY address block truncated")
    if family is Family.INET:
        source, _, port, _ = struct.unpack("!4s4sHH", block[:12])
        return ProxyHeader(command, (str(ipaddress.IPv4Address(source)), port))
    if family is Family.INET6:
        source, _, port, _ = struct.unpack("!16s16sHH", block[:36])
        return ProxyHeader(command, (str(ipaddress.IPv6Address(source)), port))
    return ProxyHeader(command, None)  # UNSPEC or a Unix socket: no IP address to use (§2.2)


async def read_header(reader: asyncio.StreamReader, timeout_s: float) -> ProxyHeader:
    """Read one header from the start of a connection from a trusted front. Raises ProxyHeaderError when
    it is malformed, too long, cut short, or not complete within `timeout_s`; nothing after the header is
    read, so the session starts with the client's first octet."""
    try:
        async with asyncio.timeout(timeout_s):
            fixed = b""
            while len(fixed) < FIXED_LENGTH:
                chunk = await reader.read(FIXED_LENGTH - len(fixed))
                if not chunk:
                    raise ProxyHeaderError("connection closed before the PROXY header")
                fixed += chunk
                checked = min(len(fixed), len(SIGNATURE))
                if fixed[:checked] != SIGNATURE[:checked]:
                    raise ProxyHeaderError("no PROXY v2 header")
            _, length = parse_fixed(fixed)
            block = await reader.readexactly(length)
    except TimeoutError:
        raise ProxyHeaderError(f"no PROXY header within {timeout_s:g} s") from None
    except asyncio.IncompleteReadError:
        raise ProxyHeaderError("connection closed in the PROXY header") from None
    return parse(fixed + block)


def encode(client: tuple[str, int] | None, server: tuple[str, int] | None = None) -> bytes:
    """A header as a front sends it (PROXY over TCP for `client`; LOCAL when None): for tests and tools."""
    if client is None:
        return SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    source = ipaddress.ip_address(client[0])
    destination = ipaddress.ip_address(server[0] if server else ("0.0.0.0" if source.version == 4 else "::"))
    server = server or (str(destination), 0)
    family = Family.INET if source.version == 4 else Family.INET6
    block = source.packed + destination.packed + struct.pack("!HH", client[1], server[1])
    return SIGNATURE + bytes([0x21, family << 4 | Transport.STREAM]) + struct.pack("!H", len(block)) + block
