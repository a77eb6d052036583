"""The options of ``kglance serve``, kept apart from the server so the CLI can offer them
without importing aiohttp, pydantic and the drivers for every client command."""

from __future__ import annotations

import argparse
import dataclasses
import os

DEFAULT_SOCKET = "kglance.sock"
DEFAULT_DATADIR = "kglance-data"


@dataclasses.dataclass(frozen=True, slots=True)
class ServeOptions:
    config: str | None = None
    socket: str = DEFAULT_SOCKET
    socket_mode: int = 0o660
    grace_period: float = 25.0
    reload_interval: float = 1.0
    upload_idle_timeout: float = 120.0
    datadir: str = DEFAULT_DATADIR  # of the embedded default configuration only
    log_level: str = "info"


def _mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal mode such as 0660") from None
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"{text!r} is not a permission mode")
    return mode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``kglance serve`` (also ``python -m kglance.sidecar``)."""
    defaults = ServeOptions()
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="glance_store multi-backend configuration (default: one filesystem backend "
        f"under ./{DEFAULT_DATADIR})",
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        default=os.environ.get("KGLANCE_SOCKET", defaults.socket),
        help="Unix socket to listen on (default: $KGLANCE_SOCKET or ./%(default)s)",
    )
    parser.add_argument(
        "--socket-mode",
        type=_mode,
        default=defaults.socket_mode,
        metavar="MODE",
        help="permissions of the socket file, octal (default: 0660)",
    )
    parser.add_argument(
        "--grace-period",
        type=float,
        default=defaults.grace_period,
        metavar="SECONDS",
        help="on SIGTERM, how long streams in flight may take to finish (default: %(default)s)",
    )
    parser.add_argument(
        "--reload-interval",
        type=float,
        default=defaults.reload_interval,
        metavar="SECONDS",
        help="how often the configuration and secret files are checked for changes "
        "(default: %(default)s; 0 disables hot reload)",
    )
    parser.add_argument(
        "--upload-idle-timeout",
        type=float,
        default=defaults.upload_idle_timeout,
        metavar="SECONDS",
        help="fail an upload whose client sends nothing for this long (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default=defaults.log_level,
        choices=("debug", "info", "warning", "error"),
        help="(default: %(default)s)",
    )


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    return ServeOptions(
        config=args.config,
        socket=args.socket,
        socket_mode=args.socket_mode,
        grace_period=args.grace_period,
        reload_interval=args.reload_interval,
        upload_idle_timeout=args.upload_idle_timeout,
        log_level=args.log_level,
    )
