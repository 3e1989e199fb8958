"""A write body that reaches the gateway in several TCP segments is read whole.

Prometheus' larger bodies (metadata, batches after a backlog) arrive in more than one segment;
the gateway must not take "what has arrived so far" for the whole body.
"""

from __future__ import annotations

import asyncio

from gateway.app_keys import LAYOUT
from gateway.storage.clickhouse import ClickHouse
from tests.conftest import FIXTURES, RunningGateway

PIECES = 4


async def post_in_pieces(gateway: RunningGateway, body: bytes) -> tuple[int, str]:
    """POST with a Content-Length, sending the body in PIECES writes with pauses between."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        head = (
            "POST /api/v1/write HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{gateway.port}\r\n"
            "Content-Type: application/x-protobuf\r\n"
            "Content-Encoding: snappy\r\n"
            "X-Prometheus-Remote-Write-Version: 0.1.0\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode())
        step = -(-len(body) // PIECES)
        for offset in range(0, len(body), step):
            writer.write(body[offset : offset + step])
            await writer.drain()
            await asyncio.sleep(0.05)
        response = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, rest = response.decode(errors="replace").partition("\r\n")
    return int(status_line.split()[1]), rest.partition("\r\n\r\n")[2]


async def test_body_in_several_segments_is_stored(
    gateway: RunningGateway, session_store: ClickHouse
) -> None:
    body = (FIXTURES / "rw_1.bin").read_bytes()
    status, text = await post_in_pieces(gateway, body)
    assert status == 204, text
    layout = gateway.app[LAYOUT]
    stored = session_store.run_sync(
        lambda c: sum(
            c.command(f"SELECT count() FROM {table} FINAL") for table in layout.samples_tables
        )
    )
    assert stored == 500  # rw_1.bin: 500 series x 1 sample
