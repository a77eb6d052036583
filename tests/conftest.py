"""Shared test configuration.

Tests that need a real server read its address from the environment that
``scripts/test.sh`` exports after starting it. Run by hand without the server, such a test
skips; under ``scripts/test.sh`` (``KGLANCE_REQUIRE_SERVERS=1``) a missing server fails it.
"""

from __future__ import annotations

import os

import pytest


def require_env(name: str) -> str:
    value = os.environ.get(name)
    if value:
        return value
    message = f"{name} is not set: start the servers with scripts/test.sh"
    if os.environ.get("KGLANCE_REQUIRE_SERVERS") == "1":
        pytest.fail(message)
    pytest.skip(message)
