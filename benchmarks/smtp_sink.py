"""A minimal, fast SMTP sink for benchmarks: replies 250 to everything, reads DATA to
the terminating dot, keeps nothing. Pipelining works (replies go out in order).

    .venv/bin/python benchmarks/smtp_sink.py --port 0     # prints "port N", serves forever

Not aiosmtpd: that one saturates near 500 messages/s here, so it, not the client,
would be what a benchmark measured.
"""

from __future__ import annotations

import argparse
import asyncio


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await reader.readuntil(b"\r\n.\r\n")
                writer.write(b"250 2.0.0 OK\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(session, "127.0.0.1", port, limit=1 << 20)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
