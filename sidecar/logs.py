"""Structured JSON logs: one object per line, one line per operation, never a credential.

Log collectors in a cluster parse JSON lines; a line per operation (``event: "operation"``
with request id, op, image id, backend, bytes, duration and outcome) is what an operator greps
when an upload failed. Credentials could reach a log only through a location URI or an SDK's
exception text, so every line is scrubbed as a last line of defence: ``scheme://user:secret@``
becomes ``scheme://***@`` whatever produced it. Locations are logged with ``str(location)``,
which already leaves credentials out.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
from typing import Any, TextIO

LOGGER_NAME = "kglance.sidecar"
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"']+@")


def scrub(text: str) -> str:
    """Remove ``user:password@`` from every URI in ``text``."""
    return _USERINFO.sub(r"\1***@", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(payload, default=str))


def setup(*, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every log record of the process as JSON lines to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def get(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def event(
    logger: logging.Logger,
    message: str,
    *,
    level: int = logging.INFO,
    exc_info: bool = False,
    **fields: Any,
) -> None:
    """Log ``message`` with structured ``fields`` (and the exception being handled)."""
    logger.log(level, message, exc_info=exc_info, extra={"fields": fields})
