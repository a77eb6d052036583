"""Fixtures for the operator's tests: one real kopf operator per module against the emulator.

A module that uses ``operator_env`` runs its tests in the module's event loop::

    pytestmark = pytest.mark.asyncio(loop_scope="module")

and may override ``operator_settings`` (module scope) to change intervals or delays.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from kglance.operator.settings import OperatorSettings
from tests.operator.emulator import OperatorEnv, running_operator


@pytest.fixture(scope="module")
def operator_settings(tmp_path_factory: pytest.TempPathFactory) -> OperatorSettings:
    return OperatorSettings(
        volume_root=str(tmp_path_factory.mktemp("operator-volumes")),
        probe_interval=1.0,
        retry_delay=0.5,
        standalone=True,
        liveness_endpoint="",
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def operator_env(operator_settings: OperatorSettings) -> AsyncIterator[OperatorEnv]:
    async with running_operator(operator_settings) as env:
        yield env
