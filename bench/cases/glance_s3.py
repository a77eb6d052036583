"""glance_store 5.7.0's s3 store on the test radosgw, driven the way Glance drives it.

Runs in the glance venv (``peers.py`` installs boto3 there); glance_store and oslo.config are
imported by name at call time, so this module stays importable in the project's venv. The
store gets its default options and the same server and bucket as ``kglance_s3`` (see
``s3_server``). An add of unknown size is glance's ``image_size = 0``: with the default
``s3_store_large_object_size`` that is a single PUT of the whole image, held in memory (see
the peak RSS column).
"""

from __future__ import annotations

import importlib
import uuid
from typing import Any

from bench import plan
from bench.cases import s3_server
from bench.core import Job, Stopwatch, Timing

BACKEND = "s3"
GET_IMAGE_ID = "bench-get-glance"


def _configure(job: Job) -> Any:
    """A configured ``glance_store.multi_backend`` with one ``s3`` backend."""
    cfg = importlib.import_module("oslo_config.cfg")
    multi_backend = importlib.import_module("glance_store.multi_backend")
    conf = cfg.CONF  # multi_backend reads the global CONF in get()
    conf.register_opt(cfg.DictOpt("enabled_backends"))  # Glance registers this, not the library
    conf([], project="kglance-bench", default_config_files=[], default_config_dirs=[])
    conf.set_override("enabled_backends", {BACKEND: "s3"})
    multi_backend.register_store_opts(conf)
    conf.set_override("default_backend", BACKEND, group="glance_store")
    for name, value in s3_server.options().items():
        conf.set_override(name, value, group=BACKEND)
    multi_backend.create_multi_stores(conf)
    multi_backend.verify_store()
    return multi_backend


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


def _add(multi_backend: Any, image_id: str, size: int, job: Job) -> tuple[Stopwatch, Any]:
    conf = importlib.import_module("oslo_config.cfg").CONF
    with open(job.input_file, "rb") as image_file, Stopwatch() as watch:
        result = multi_backend.add_with_multihash(
            conf, image_id, image_file, size, BACKEND, "sha512"
        )
    return watch, tuple(result)


def add(job: Job) -> Timing:
    multi_backend = _configure(job)
    size = job.size if job.params["sized"] == "yes" else 0  # glance's "unknown"
    watch, (url, written, checksum, multihash, _meta) = _add(
        multi_backend, str(uuid.uuid4()), size, job
    )
    multi_backend.delete(url, BACKEND)
    return watch.timing(written, md5=checksum, sha512=multihash)


def store_for_get(job: Job) -> Timing:
    """Store the input once under a fixed id (kept across samples and runs) for the get."""
    ensure_bucket(job)
    multi_backend = _configure(job)
    exceptions = importlib.import_module("glance_store.exceptions")
    store = multi_backend.get_store_from_store_identifier(BACKEND)
    url = f"{store.url_prefix}/{GET_IMAGE_ID}"
    try:
        if multi_backend.get_size_from_uri_and_backend(url, BACKEND) == job.size:
            return Timing(0.0, 0, 0.0, info={"location": url})
        multi_backend.delete(url, BACKEND)
    except exceptions.NotFound:
        pass
    watch, (url, *_rest) = _add(multi_backend, GET_IMAGE_ID, job.size, job)
    return watch.timing(job.size, location=url)


def get(job: Job) -> Timing:
    multi_backend = _configure(job)
    nbytes = 0
    with Stopwatch() as watch:
        chunks, _size = multi_backend.get(job.params["location"], BACKEND)
        for chunk in chunks:
            nbytes += len(chunk)
    return watch.timing(nbytes)


def cases(settings: plan.Settings) -> list[plan.Case]:
    if not s3_server.available():
        return []

    def add_case(case_id: str, *, sized: bool) -> plan.PythonCase:
        size = "known size" if sized else "unknown size (image_size 0)"
        return plan.PythonCase(
            id=case_id,
            title=f"glance_store 5.7.0 s3 add_with_multihash sha512, {size} (radosgw)",
            section="add",
            peer=plan.GLANCE,
            function=f"{__name__}:add",
            setup=f"{__name__}:ensure_bucket",
            params={"sized": "yes" if sized else "no"},
        )

    return [
        add_case("glance.s3.add", sized=True),
        add_case("glance.s3.add.unsized", sized=False),
        plan.PythonCase(
            id="glance.s3.get",
            title="glance_store 5.7.0 s3 get (radosgw)",
            section="get (warm cache)",
            peer=plan.GLANCE,
            function=f"{__name__}:get",
            setup=f"{__name__}:store_for_get",
            workdir="glance.s3.get",
        ),
    ]
