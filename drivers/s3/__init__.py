"""The ``s3`` store: images as objects in one bucket of Amazon S3 or an S3-compatible service.

glance_store's s3 driver rebuilt where it was weak: one boto3 client per backend instead of
one per call; uploads of unknown size streamed as multipart instead of held in memory;
parts uploaded concurrently with a bounded number in memory; the multipart upload aborted on
every failure; duplicates refused atomically with ``If-None-Match`` where the server supports
it; ranged reads; and no credentials in locations, ever.

Modules: ``options`` (the glance-named options), ``client`` (the boto3 client and error
translation), ``parts`` (part sizes and cutting the stream), ``writing`` (PUT and multipart),
``reading`` (ranged GET streamed off the loop), ``driver``.
"""

from kglance.drivers.s3.driver import S3Driver
from kglance.drivers.s3.options import S3Options

__all__ = ["S3Driver", "S3Options"]
