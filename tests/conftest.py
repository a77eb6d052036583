"""Shared test configuration.

Tests that need a real server read its address from the environment that
``scripts/test.sh`` exports after starting it. Run by hand without the server, such a test
skips; under ``scripts/test.sh`` (``KGLANCE_REQUIRE_SERVERS=1``) a missing server fails it.
"""

from __future__ import annotations

import os
import sys

import pytest


def require_env(name: str) -> str:
    value = os.environ.get(name)
    if value:
        return value
    message = f"{name} is not set: start the servers with scripts/test.sh"
    if os.environ.get("KGLANCE_REQUIRE_SERVERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Exit with pytest's status once everything else has run.

    After the cinder tests (os-brick and oslo.privsep loaded in-process), a worker thread of the
    cinder driver's pool disappears at the OS level while CPython still counts it alive, so the
    interpreter waits for it forever at shutdown (seen with 1 OS thread left, MainThread in
    ``threading._shutdown``). Until that is understood (open item in the issue notes), the test
    process must not hang CI: every report is written by now, so leave without the join.
    """
    if _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
