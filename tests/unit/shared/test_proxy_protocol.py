"""The PROXY protocol v2 reader (shared.proxy_protocol) on the in-memory connection: what a trusted front
may send, and every way a header can be wrong (each refused without waiting for more input)."""

import asyncio
import struct

import pytest

from shared.config.pop3 import Pop3Settings
from shared.config.submission import SubmissionSettings
from shared.proxy_protocol import (
    MAX_ADDRESS_BLOCK,
    SIGNATURE,
    Command,
    FirstOctets,
    ProxyHeader,
    ProxyHeaderError,
    TrustedFronts,
    encode,
    read_header,
    starts_like_header,
)
from tests.fixtures.memory_transport import MemoryTransport, settle

CLIENT_COMMAND = b"EHLO client.example\r\n"


def fixed(version_command: int, family_transport: int, length: int) -> bytes:
    return SIGNATURE + bytes([version_command, family_transport]) + struct.pack("!H", length)


async def receive(data: bytes, *, eof: bool = False, timeout_s: float = 30.0) -> tuple[object, bytes]:
    """Feed `data` to a fresh connection, let `read_header` run until it waits for more input or ends;
    (its header or error, or None while it still waits; what is left in the reader for the session)."""
    reader = asyncio.StreamReader(limit=2048)
    protocol = asyncio.StreamReaderProtocol(reader)
    protocol.connection_made(MemoryTransport(protocol))
    task = asyncio.ensure_future(read_header(reader, timeout_s))
    protocol.data_received(data)
    if eof:
        protocol.eof_received()
    await settle(reader, task)
    if not task.done():
        task.cancel()
        return None, b""
    try:
        result: object = task.result()
    except ProxyHeaderError as exc:
        result = exc
    rest = b""
    if not eof:
        protocol.eof_received()
        rest = await reader.read()
    return result, rest


async def test_tcp4_header_gives_the_client_and_leaves_the_session_its_first_octet() -> None:
    header, rest = await receive(encode(("192.0.2.7", 40001), ("198.51.100.1", 25)) + CLIENT_COMMAND)
    assert header == ProxyHeader(Command.PROXY, ("192.0.2.7", 40001))
    assert rest == CLIENT_COMMAND


async def test_tcp6_header() -> None:
    header, rest = await receive(encode(("2001:db8::7", 5), ("2001:db8::1", 587)) + CLIENT_COMMAND)
    assert header == ProxyHeader(Command.PROXY, ("2001:db8::7", 5))
    assert rest == CLIENT_COMMAND


async def test_header_arriving_an_octet_at_a_time() -> None:
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    protocol.connection_made(MemoryTransport(protocol))
    task = asyncio.ensure_future(read_header(reader, 30.0))
    for octet in encode(("192.0.2.8", 1234)):
        protocol.data_received(bytes([octet]))
        await settle(reader, task)
    assert task.result().client == ("192.0.2.8", 1234)


async def test_local_command_carries_no_client_even_with_an_address_block() -> None:
    """HAProxy's health checks: LOCAL, whose address block (if any) the receiver must ignore (§2.2)."""
    assert (await receive(encode(None)))[0] == ProxyHeader(Command.LOCAL, None)
    with_block = fixed(0x20, 0x11, 12) + bytes(12)
    assert (await receive(with_block + CLIENT_COMMAND)) == (ProxyHeader(Command.LOCAL, None), CLIENT_COMMAND)


async def test_unspec_family_carries_no_client() -> None:
    assert (await receive(fixed(0x21, 0x00, 0)))[0] == ProxyHeader(Command.PROXY, None)


async def test_tlvs_after_the_addresses_are_skipped() -> None:
    tlv = bytes([0x04]) + struct.pack("!H", 3) + b"pad"  # PP2_TYPE_NOOP
    plain = encode(("192.0.2.9", 7))
    with_tlv = plain[:14] + struct.pack("!H", 12 + len(tlv)) + plain[16:] + tlv
    assert await receive(with_tlv + CLIENT_COMMAND) == (
        ProxyHeader(Command.PROXY, ("192.0.2.9", 7)),
        CLIENT_COMMAND,
    )


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(CLIENT_COMMAND, id="a command instead of a header"),
        pytest.param(b"EHLO\r\n", id="refused at the first wrong octet, before 16 arrived"),
        pytest.param(b"\r\n\r\n\x00\r\nQUIX\n" + bytes(8), id="wrong signature"),
        pytest.param(b"PROXY TCP4 192.0.2.7 198.51.100.1 40001 25\r\n", id="version 1"),
        pytest.param(fixed(0x11, 0x11, 12) + bytes(12), id="version nibble 1"),
        pytest.param(fixed(0x22, 0x11, 12) + bytes(12), id="unknown command"),
        pytest.param(fixed(0x21, 0x41, 12) + bytes(12), id="unknown family"),
        pytest.param(fixed(0x21, 0x12, 12) + bytes(12), id="datagram"),
        pytest.param(fixed(0x21, 0x11, 4) + bytes(4), id="address block shorter than IPv4 needs"),
        pytest.param(fixed(0x21, 0x21, 12) + bytes(12), id="address block shorter than IPv6 needs"),
        pytest.param(fixed(0x21, 0x11, MAX_ADDRESS_BLOCK + 1), id="oversized: refused before reading it"),
        pytest.param(fixed(0x21, 0x11, 0xFFFF), id="oversized: the largest length"),
    ],
)
async def test_malformed_headers_are_refused_at_once(data: bytes) -> None:
    result, _ = await receive(data)
    assert isinstance(result, ProxyHeaderError), result


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(SIGNATURE[:7], id="in the signature"),
        pytest.param(encode(("192.0.2.7", 1))[:20], id="in the address block"),
    ],
)
async def test_truncated_header_then_close_is_refused(data: bytes) -> None:
    assert (await receive(data))[0] is None  # still waiting for the rest
    result, _ = await receive(data, eof=True)
    assert isinstance(result, ProxyHeaderError), result


async def test_a_front_that_stalls_is_refused_after_the_timeout() -> None:
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    protocol.connection_made(MemoryTransport(protocol))
    protocol.data_received(SIGNATURE[:5])
    with pytest.raises(ProxyHeaderError, match="no PROXY header within"):
        await read_header(reader, 0.05)


def test_first_octets_of_untrusted_connections() -> None:
    assert starts_like_header(b"") is None
    assert starts_like_header(SIGNATURE[:3]) is None
    assert starts_like_header(SIGNATURE) is True
    assert starts_like_header(b"PROXY TCP4 1.2.3.4") is True
    assert starts_like_header(b"PROX") is None
    assert starts_like_header(b"EHLO x") is False
    assert starts_like_header(b"\r\nQUIT") is False
    split = FirstOctets()
    assert not split.header_seen(SIGNATURE[:4]) and split.header_seen(SIGNATURE[4:] + b"rest")
    innocent = FirstOctets()
    assert not innocent.header_seen(b"USER a\r\n")
    assert not innocent.header_seen(SIGNATURE)  # judged on the first octets only: later data is data


def test_trusted_fronts() -> None:
    fronts = TrustedFronts.parse(" 172.28.0.0/16, 127.0.0.10 ,2001:db8::/32,")
    assert "172.28.5.1" in fronts and "127.0.0.10" in fronts and "2001:db8::5" in fronts
    assert "::ffff:172.28.0.9" in fronts  # an IPv4 peer as a dual-stack socket reports it
    assert "127.0.0.1" not in fronts and "unknown" not in fronts and None not in fronts
    assert not TrustedFronts.parse("") and not TrustedFronts.parse(" , ")
    with pytest.raises(ValueError):
        TrustedFronts.parse("front.example")


@pytest.mark.parametrize("settings_class", [SubmissionSettings, Pop3Settings])
def test_one_setting_name_for_every_listener(settings_class: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUBIN_SERVICE_TOKEN", "t")
    monkeypatch.setenv("YUBIN_PROXY_PROTOCOL_FROM", "172.28.0.0/16")
    settings = settings_class()
    assert "172.28.0.2" in settings.proxy_fronts
    monkeypatch.setenv("YUBIN_PROXY_PROTOCOL_FROM", "not-an-address")
    with pytest.raises(ValueError):
        settings_class()
    monkeypatch.delenv("YUBIN_PROXY_PROTOCOL_FROM")
    assert not settings_class().proxy_fronts  # off by default
