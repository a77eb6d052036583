"""glance_store 5.7.0's s3 store on the test radosgw, driven the way Glance drives it.

Runs in the glance venv (``peers.py`` installs boto3 there) and imports nothing of kglance (see
``_glance_common``). The store gets its default options and the same server and bucket as
``kglance_s3`` (see ``s3_server``). An add of unknown size is glance's ``image_size = 0``: with
the default ``s3_store_large_object_size`` that is a single PUT of the whole image, held in
memory (see the peak RSS column).
"""

from __future__ import annotations

import importlib

from bench import plan
from bench.cases import _glance_common, s3_server
from bench.core import Job, Timing

GET_IMAGE_ID = "bench-get-glance"


def _options(job: Job) -> dict[str, object]:
    return s3_server.options()


STORE = _glance_common.Store("s3", backend_id="s3", options=_options)
add = STORE.add
get = STORE.get


def ensure_bucket(job: Job) -> Timing:
    """Create the bucket with plain boto3 if it is missing (untimed setup).

    glance_store cannot create it on this server: with ``s3_store_region_name = us-east-1`` it
    sends ``LocationConstraint: us-east-1``, which S3 and radosgw refuse.
    """
    boto3 = importlib.import_module("boto3")
    options = s3_server.options()
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=options["s3_store_host"],
        region_name=options["s3_store_region_name"] or None,
        aws_access_key_id=options["s3_store_access_key"],
        aws_secret_access_key=options["s3_store_secret_key"],
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if options["s3_store_bucket"] not in existing:
        client.create_bucket(Bucket=options["s3_store_bucket"])
    return Timing(0.0, 0, 0.0)


def store_for_get(job: Job) -> Timing:
    """Store the input once under a fixed id (kept across samples and runs) for the get."""
    ensure_bucket(job)
    multi_backend = STORE.configure(job)
    store = multi_backend.get_store_from_store_identifier(STORE.backend_id)
    url = f"{store.url_prefix}/{GET_IMAGE_ID}"
    return STORE.store_once(multi_backend, job, image_id=GET_IMAGE_ID, url=url)


def cases(settings: plan.Settings) -> list[plan.Case]:
    if not s3_server.available():
        return []
    return _glance_common.server_cases(
        __name__, store_type="s3", server="radosgw", add_setup="ensure_bucket"
    )
