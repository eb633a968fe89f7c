"""A minimal, fast SMTP sink for benchmarks: replies 250 to everything, reads DATA to
the terminating dot, keeps nothing. Pipelining works (replies go out in order).

    .venv/bin/python benchmarks/smtp_sink.py --port 0     # prints "port N", serves forever
    .venv/bin/python benchmarks/smtp_sink.py --record got.txt   # + one line per recipient

With `--record FILE`, every accepted message appends its recipients to FILE, one per line,
flushed before the 250 goes out: a message the client may believe lost (killed before it
read the reply) is still counted, as a real server would have delivered it. The crash
benchmark counts duplicates from that file.

Not aiosmtpd: that one saturates near 500 messages/s here, so it, not the client,
would be what a benchmark measured.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import TextIO


def _address(line: bytes) -> str:
    """`RCPT TO:<a@b> NOTIFY=...` -> `a@b` (what is between the angle brackets)."""
    text = line.decode("utf-8", "replace")
    start = text.find("<")
    return text[start + 1 : text.find(">", start)].strip()


async def session(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: TextIO | None = None
) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    recipients: list[str] = []
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
                if record is not None:
                    record.write("".join(f"{r}\n" for r in recipients))
                    record.flush()
                recipients.clear()
                writer.write(b"250 2.0.0 OK\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                if verb == b"RCPT":
                    recipients.append(_address(line))
                elif verb in (b"MAIL", b"RSET"):
                    recipients.clear()
                writer.write(b"250 OK\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(port: int, record: Path | None = None) -> None:
    sink = record.open("a", encoding="utf-8") if record is not None else None
    server = await asyncio.start_server(
        partial(session, record=sink), "127.0.0.1", port, limit=1 << 20
    )
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def spawn(record: Path | None = None) -> tuple[subprocess.Popen[str], int]:
    """Start the sink in a process of its own (as a real server is: the client's process
    does not pay for it); returns the process, to terminate, and its port."""
    extra = ["--record", str(record)] if record is not None else []
    process = subprocess.Popen(
        [sys.executable, __file__, *extra], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline().split()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", type=Path, help="append each accepted recipient here")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
