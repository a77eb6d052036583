"""The S3 server both s3 benchmark modules use, from the environment ceph-up.sh prints.

Standard library only: ``glance_s3`` imports it inside the glance venv, where kglance is not
installed. The keys stay in the environment (each child reads them there); they never become
case parameters, which the report prints.
"""

from __future__ import annotations

import os

BUCKET = "kglance-bench"
ENVIRONMENT = ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")


def available() -> bool:
    return all(os.environ.get(name) for name in ENVIRONMENT)


def options() -> dict[str, object]:
    """glance_store's option names, the same for both stores (their defaults otherwise)."""
    return {
        "s3_store_host": os.environ["S3_ENDPOINT"],
        "s3_store_access_key": os.environ["S3_ACCESS_KEY"],
        "s3_store_secret_key": os.environ["S3_SECRET_KEY"],
        "s3_store_region_name": os.environ.get("S3_REGION", ""),
        "s3_store_bucket": BUCKET,
        "s3_store_create_bucket_on_put": True,
    }
