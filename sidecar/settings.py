"""The options of ``kglance serve``, kept apart from the server so the CLI can offer them
without importing aiohttp, pydantic and the drivers for every client command.

Recording of ImageLocations is configured by the environment, not by flags: the injecting
webhook sets it (with the namespace and pod name from the downward API), and a sidecar run
outside a cluster never has it.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

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


# --------------------------------------------------------------------------- recording

SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_TRUE = ("1", "true", "yes", "on")


class RecordingConfigError(ValueError):
    """The environment asks for recording but does not say enough to do it safely."""


@dataclasses.dataclass(frozen=True, slots=True)
class RecordingOptions:
    """Where and how the sidecar records ImageLocations (``sidecar/recording.py``)."""

    namespace: str
    pod_name: str
    api_url: str  # https://host:port, or http:// to a loopback address (tests)
    serviceaccount_dir: Path = Path(SERVICEACCOUNT_DIR)
    attempts: int = 5  # per record, the first included
    backoff: float = 1.0  # seconds before the second attempt, doubled for each next one
    max_backoff: float = 30.0  # seconds, at most, between two attempts
    queue_size: int = 1000  # records waiting for the API; more are dropped, not buffered
    flush_timeout: float = 5.0  # on shutdown, how long pending records may take


def _env_number(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise RecordingConfigError(f"{name}={text!r} is not a number") from None
    if value < 0:
        raise RecordingConfigError(f"{name}={text!r} must not be negative")
    return value


def _api_url(environ: Mapping[str, str]) -> str:
    explicit = environ.get("KGLANCE_KUBERNETES_API", "").strip().rstrip("/")
    if not explicit:
        host = environ.get("KUBERNETES_SERVICE_HOST", "").strip()
        port = environ.get("KUBERNETES_SERVICE_PORT", "443").strip()
        if not host:
            raise RecordingConfigError(
                "KGLANCE_RECORD_LOCATIONS is on but KUBERNETES_SERVICE_HOST is not set "
                "(not in a cluster?)"
            )
        return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    parts = urlsplit(explicit)
    if parts.scheme == "https" and parts.hostname:
        return explicit
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return explicit  # the bearer token never leaves the machine in clear text
    raise RecordingConfigError(
        f"KGLANCE_KUBERNETES_API={explicit!r}: use https://, or http:// to a loopback address"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def recording_from_env(environ: Mapping[str, str]) -> RecordingOptions | None:
    """The recording options ``environ`` asks for; ``None`` when recording is off."""
    if environ.get("KGLANCE_RECORD_LOCATIONS", "").strip().lower() not in _TRUE:
        return None
    directory = Path(environ.get("KGLANCE_SERVICEACCOUNT_DIR", "").strip() or SERVICEACCOUNT_DIR)
    namespace = environ.get("KGLANCE_NAMESPACE", "").strip()
    if not namespace:
        try:
            namespace = (directory / "namespace").read_text().strip()
        except OSError:
            namespace = ""
    if not namespace:
        raise RecordingConfigError(
            f"KGLANCE_RECORD_LOCATIONS is on but KGLANCE_NAMESPACE is not set "
            f"and {directory / 'namespace'} cannot be read"
        )
    pod_name = environ.get("KGLANCE_POD_NAME", "").strip()
    if not pod_name:
        raise RecordingConfigError("KGLANCE_RECORD_LOCATIONS is on but KGLANCE_POD_NAME is not set")
    defaults = RecordingOptions(namespace="", pod_name="", api_url="")
    attempts = _env_number(environ, "KGLANCE_RECORD_ATTEMPTS", defaults.attempts)
    queue_size = _env_number(environ, "KGLANCE_RECORD_QUEUE_SIZE", defaults.queue_size)
    return RecordingOptions(
        namespace=namespace,
        pod_name=pod_name,
        api_url=_api_url(environ),
        serviceaccount_dir=directory,
        attempts=max(1, int(attempts)),
        backoff=_env_number(environ, "KGLANCE_RECORD_BACKOFF", defaults.backoff),
        max_backoff=_env_number(environ, "KGLANCE_RECORD_MAX_BACKOFF", defaults.max_backoff),
        queue_size=max(1, int(queue_size)),
        flush_timeout=_env_number(environ, "KGLANCE_RECORD_FLUSH_TIMEOUT", defaults.flush_timeout),
    )
