"""The sidecar process: configuration, socket, signals, reload and a graceful stop.

Start-up order matters. The configuration is read and checked first (a typo fails fast, naming
section and option), then the socket is bound (a live sidecar on it stops us before any driver
is constructed or any storage touched), then the drivers are built and requests are served.

SIGTERM or SIGINT: the socket file is removed and the listener closed at once, so new clients
fail fast, and a new request on a connection already open gets ``503 shutting_down``; requests
in flight get ``grace_period`` seconds to finish (the sidecar drains them itself: aiohttp's
shutdown would stop reading their bodies), then are cancelled, so an unfinished upload leaves
nothing behind; the drivers are closed and the process exits 0. SIGHUP reloads the
configuration immediately, as a file change would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from kglance.drivers import registry
from kglance.sidecar import app, config, keys, logs, reloading, settings, sockets

# after the grace period, how long cancelled requests get to clean up (remove temp data)
CANCEL_TIMEOUT = 5.0


def run(options: settings.ServeOptions) -> int:
    """Serve until SIGTERM/SIGINT; the process exit status."""
    logs.setup(level=getattr(logging, options.log_level.upper()))
    log = logs.get("server")
    try:
        asyncio.run(serve(options))
    except config.ConfigError as exc:
        logs.event(log, "invalid configuration", level=logging.ERROR, error=exc.message)
        return 2
    except sockets.SocketError as exc:
        logs.event(log, "cannot listen", level=logging.ERROR, error=str(exc))
        return 1
    except settings.RecordingConfigError as exc:
        logs.event(log, "invalid recording settings", level=logging.ERROR, error=str(exc))
        return 2
    return 0


def _load(options: settings.ServeOptions, drivers: registry.Registry) -> config.ServiceConfig:
    if options.config is not None:
        return config.read(options.config, drivers=drivers)
    datadir = os.path.abspath(options.datadir)
    os.makedirs(datadir, exist_ok=True)
    return config.parse(
        config.embedded_default(datadir), source="<embedded default>", drivers=drivers
    )


async def serve(options: settings.ServeOptions) -> None:
    log = logs.get("server")
    drivers = registry.Registry.discover()
    loaded = _load(options, drivers)
    recording_options = settings.recording_from_env(os.environ)
    for warning in loaded.warnings:
        logs.event(log, warning, level=logging.WARNING, event="config_warning")
    sock = sockets.bind(options.socket, mode=options.socket_mode)
    inode = sockets.inode_of(options.socket)
    try:
        backends_ = await config.build(loaded, drivers=drivers)
        application = app.make_app(
            backends_,
            keys.AppSettings(upload_idle_timeout=options.upload_idle_timeout),
            recording_options=recording_options,
        )
        runner = web.AppRunner(
            application,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=CANCEL_TIMEOUT,
        )
        await runner.setup()
    except BaseException:
        sock.close()
        sockets.remove(options.socket, inode=inode)
        raise
    tasks: list[asyncio.Task[object]] = []
    try:
        site = web.SockSite(runner, sock)
        await site.start()
        logs.event(
            log,
            "listening",
            event="start",
            socket=options.socket,
            config=loaded.source,
            backends=[b.id for b in loaded.backends],
            default_backend=loaded.default_backend,
            records_locations_in=recording_options and recording_options.namespace,
            pid=os.getpid(),
        )
        stop = asyncio.Event()
        reloader = None
        if options.config is not None:
            reloader = reloading.Reloader(
                config_path=options.config,
                watched=loaded.watched,
                drivers=drivers,
                service_=application[keys.SERVICE],
                interval=options.reload_interval or 1.0,
            )
            if options.reload_interval > 0:
                tasks.append(asyncio.create_task(reloader.run()))
        _install_signals(stop, reloader, tasks)
        await stop.wait()
        logs.event(log, "stopping", event="stop", grace_period_s=options.grace_period)
        sockets.remove(options.socket, inode=inode)
        await site.stop()  # no new connections; those open get 503 for new requests
        service = application[keys.SERVICE]
        if not await service.drain(grace_period=options.grace_period):
            logs.event(log, "grace period over; cancelling what is left", level=logging.WARNING)
            await service.cancel_requests(cleanup_period=CANCEL_TIMEOUT)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await runner.cleanup()
        sock.close()
        sockets.remove(options.socket, inode=inode)
        logs.event(log, "stopped", event="stopped")


def _install_signals(
    stop: asyncio.Event,
    reloader: reloading.Reloader | None,
    tasks: list[asyncio.Task[object]],
) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if reloader is not None:

        def reload_now() -> None:
            tasks.append(loop.create_task(reloader.reload(reason="SIGHUP")))

        loop.add_signal_handler(signal.SIGHUP, reload_now)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kglance.sidecar", description="The kglance image sidecar."
    )
    settings.add_arguments(parser)
    return run(settings.options_from_args(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
