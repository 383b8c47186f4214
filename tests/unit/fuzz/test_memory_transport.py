"""The in-memory connection the fuzz tests run sessions on: what it relies on in asyncio still holds."""

import asyncio

from tests.fixtures.memory_transport import MemoryTransport, settle, waiting_for_input


def test_settle_stops_when_the_reader_waits_and_the_transport_reports_the_close() -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        transport = MemoryTransport(protocol)
        protocol.connection_made(transport)
        writer = asyncio.StreamWriter(transport, protocol, reader, asyncio.get_running_loop())

        async def echo() -> None:
            while line := await reader.readline():
                writer.write(b"> " + line)
            writer.close()

        task = asyncio.ensure_future(echo())
        await settle(reader, task)
        assert waiting_for_input(reader), "asyncio's StreamReader no longer sets _waiter while it waits"
        protocol.data_received(b"one\r\ntw")
        await settle(reader, task)
        assert transport.take() == b"> one\r\n"
        protocol.data_received(b"o\r\n")
        protocol.eof_received()
        await settle(reader, task)
        await asyncio.sleep(0)
        assert task.done() and transport.take() == b"> two\r\n" and transport.closed

    asyncio.run(main())
