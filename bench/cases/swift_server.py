"""The Swift server both swift benchmark modules use, from the environment swift-up.sh prints.

Standard library only: ``glance_swift`` imports it inside the glance venv, where kglance is not
installed. The key stays in the environment (each child reads it there); it never becomes a
case parameter, which the report prints.

The test Swift authenticates with tempauth (auth v1). Both stores get the same account, the
same container and glance's default large-object options (single PUT below 5120 "MB",
segments of 200 "MB"), so the rows differ only by the store.
"""

from __future__ import annotations

import os

CONTAINER = "kglance-bench"
ENVIRONMENT = ("SWIFT_AUTH_URL", "SWIFT_USER", "SWIFT_KEY")


def available() -> bool:
    return all(os.environ.get(name) for name in ENVIRONMENT)


def credentials() -> tuple[str, str, str]:
    return os.environ["SWIFT_AUTH_URL"], os.environ["SWIFT_USER"], os.environ["SWIFT_KEY"]


def options() -> dict[str, object]:
    """glance_store's option names, the same for both stores (their defaults otherwise)."""
    auth_url, user, key = credentials()
    return {
        "swift_store_auth_address": auth_url,
        "swift_store_user": user,
        "swift_store_key": key,
        "swift_store_container": CONTAINER,
        "swift_store_create_container_on_put": True,
    }
