#!/usr/bin/env python3
"""A TCP proxy that breaks connections on purpose, for tests of how clients survive bad networks.

nginx always finishes the responses it starts, and this kernel has no ``tc netem``, so the
failures a remote image server can show (a connection dropped in the middle of a body, a server
that accepts and then never answers) are made here, in user space, between the client and a
real server. Standard library only, so any Python can run it.

Each accepted connection is forwarded to ``--target``. Faults apply per connection:

* ``--cut-after N``: after ``N`` bytes have gone from the server to the client, drop the
  connection, with an orderly close (``--how close``: the client reads EOF) or a TCP reset
  (``--how reset``: the client gets ECONNRESET and may lose data still in flight).
* ``--blackhole``: accept and read, never connect upstream and never answer.

Run as a program it prints ``PORT=<port>`` once it listens (``--listen`` defaults to port 0,
any free port) and runs until SIGTERM/SIGINT or ``--max-seconds``, so a forgotten proxy cannot
outlive a test run by long. In-process use: ``async with FaultProxy(target=...) as proxy``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import socket
import struct
from typing import Literal

CutMode = Literal["close", "reset"]
_PIECE = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Faults:
    cut_after: int | None = None  # server-to-client bytes delivered before the connection drops
    how: CutMode = "close"
    blackhole: bool = False


def _split_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def _drop(writer: asyncio.StreamWriter, how: CutMode) -> None:
    if how == "reset":
        sock = writer.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST and discards unsent data
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return
    writer.close()  # flushes what is buffered, then FIN
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    budget: int | None,
    how: CutMode,
) -> bool:
    """Copy until EOF; with a budget, stop after that many bytes. True when it cut."""
    if budget is not None:
        writer.transport.set_write_buffer_limits(high=0)  # drain() then means "in the kernel"
    try:
        while True:
            data = await reader.read(_PIECE)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return False
            if budget is not None and len(data) >= budget:
                writer.write(data[:budget])
                await writer.drain()
                await _drop(writer, how)
                return True
            if budget is not None:
                budget -= len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        writer.transport.abort()
        return True


class FaultProxy:
    """Listens on ``listen`` and forwards every connection to ``target`` with ``faults``."""

    def __init__(
        self,
        *,
        target: tuple[str, int],
        faults: Faults = Faults(),
        listen: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        self.target = target
        self.faults = faults
        self.listen = listen
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, *self.listen)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(client_r, client_w)
        finally:
            self._handlers.discard(task)
            client_w.transport.abort()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.faults.blackhole:
            while await client_r.read(_PIECE):
                pass
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            await _drop(client_w, "reset")
            return
        try:
            upstream = asyncio.ensure_future(
                _pump(client_r, server_w, budget=None, how=self.faults.how)
            )
            cut = await _pump(server_r, client_w, budget=self.faults.cut_after, how=self.faults.how)
            if cut or not upstream.done():
                upstream.cancel()
            await asyncio.gather(upstream, return_exceptions=True)
        finally:
            server_w.transport.abort()


async def _main(args: argparse.Namespace) -> None:
    faults = Faults(cut_after=args.cut_after, how=args.how, blackhole=args.blackhole)
    async with FaultProxy(target=args.target, faults=faults, listen=args.listen) as proxy:
        print(f"PORT={proxy.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", type=_split_address, required=True, help="HOST:PORT")
    parser.add_argument("--listen", type=_split_address, default=("127.0.0.1", 0))
    parser.add_argument("--cut-after", type=int, metavar="BYTES")
    parser.add_argument("--how", choices=("close", "reset"), default="close")
    parser.add_argument("--blackhole", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
