"""The one place where failures become kopf's retry decisions.

kopf retries a handler that raises ``kopf.TemporaryError`` after its ``delay`` and gives up on
one that raises ``kopf.PermanentError``; any other exception is retried with kopf's default
backoff forever, which hides bugs as slow loops. Handlers therefore run inside ``translated()``
and never decide for themselves: a storage error is temporary when the driver marked it
``retryable`` (``errors.py`` decides that, once, for every driver), an API refusal when it is
a conflict, throttling or a server failure, and network failures always are. Messages carry
only the error's own text, which drivers and the API keep free of credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import aiohttp
import kopf
import pydantic

from kglance.drivers import errors
from kglance.operator import kube

RETRY_DELAY = 10.0  # seconds before a temporary failure is tried again
BACKOFF_LIMIT = 300.0


def delay_for(retry: int) -> float:
    """Exponential backoff from ``RETRY_DELAY``, capped at ``BACKOFF_LIMIT``."""
    return min(BACKOFF_LIMIT, RETRY_DELAY * 2.0 ** min(retry, 10))


def to_kopf(exc: BaseException, *, retry: int = 0) -> kopf.TemporaryError | kopf.PermanentError:
    """kopf's verdict on ``exc``; unknown exceptions are temporary (kopf logs them)."""
    delay = delay_for(retry)
    match exc:
        case errors.StoreError() if exc.retryable:
            return kopf.TemporaryError(f"{exc.code}: {exc.message}", delay=delay)
        case errors.StoreError():
            return kopf.PermanentError(f"{exc.code}: {exc.message}")
        case kube.ApiError() if exc.retryable:
            return kopf.TemporaryError(f"API server: {exc}", delay=delay)
        case kube.ApiError():
            return kopf.PermanentError(f"API server: {exc}")
        case pydantic.ValidationError():
            # a spec the schema let through but the model refuses: retrying cannot help
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            return kopf.PermanentError(f"invalid spec: {problems}")
        case aiohttp.ClientError() | OSError() | asyncio.TimeoutError():
            return kopf.TemporaryError(f"{type(exc).__name__}: {exc}", delay=delay)
        case _:
            return kopf.TemporaryError(f"{type(exc).__name__}: {exc}", delay=delay)


@contextlib.contextmanager
def translated(*, retry: int = 0) -> Iterator[None]:
    """Re-raise whatever the block raises as kopf's temporary or permanent error."""
    try:
        yield
    except (kopf.TemporaryError, kopf.PermanentError):
        raise
    except pydantic.ValidationError as exc:
        # not chained: pydantic's own text repeats the input values
        raise to_kopf(exc, retry=retry) from None
    except Exception as exc:
        raise to_kopf(exc, retry=retry) from exc
